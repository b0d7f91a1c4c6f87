"""Distillation from the fp32 model: output maps and features, mixed into fine-tuning."""

from __future__ import annotations

import copy

import torch
from torch import nn

from efficientbioai.models.distillation import Distiller


def _net(width: int) -> nn.Sequential:
    torch.manual_seed(width)
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 2, 1),
    )  # fmt: skip


def test_a_copy_of_the_teacher_has_no_distillation_loss_and_a_changed_one_has():
    teacher = _net(8).eval()
    x = torch.randn(2, 1, 16, 16)
    twin = copy.deepcopy(teacher)
    d = Distiller(twin, teacher, x[:1], outputs=1.0, features=1.0)
    assert d.layers == ["0", "2", "4"]  # every body convolution; the head is the output term's
    assert float(d.loss(x, twin(x))) < 1e-10
    with torch.no_grad():
        twin[2].weight.mul_(1.5)
    assert float(d.loss(x, twin(x))) > 1e-3
    d.close()
    assert not twin[0]._forward_hooks and not teacher[0]._forward_hooks


def test_feature_terms_reach_a_pruned_student_through_adapters():
    teacher, student = _net(8).eval(), _net(4)
    x = torch.randn(2, 1, 16, 16)
    d = Distiller(student, teacher, x[:1], outputs=0.0, features=1.0)
    assert [tuple(a.weight.shape[:2]) for a in d.adapters.values()] == [(8, 4)] * 3
    d.loss(x, student(x)).backward()
    assert student[0].weight.grad.abs().sum() > 0 and all(a.weight.grad is not None for a in d.adapters.values())


def test_training_on_the_distillation_loss_makes_the_student_agree_with_the_teacher():
    teacher, student = _net(8).eval(), _net(4)
    x = torch.randn(8, 1, 16, 16)
    d = Distiller(student, teacher, x[:1], outputs=1.0, features=1.0)
    opt = torch.optim.Adam([*student.parameters(), *d.parameters()], lr=3e-3)
    with torch.no_grad():
        before = float(nn.functional.mse_loss(student(x), teacher(x)))
    for _ in range(150):
        loss = d.loss(x, student(x))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = float(nn.functional.mse_loss(student(x), teacher(x)))
    assert after < 0.2 * before
