"""Distillation from the unpruned fp32 model: its output maps and intermediate features.

A pruned network fine-tuned on the task loss alone re-learns from sparse labels what the fp32
model already computes densely. The distiller adds two terms to the task loss, both scaled by
the teacher's variance per channel so that their weights mean the same for every model: the output maps
(mean squared error to the teacher's) and, FitNets-style, a few intermediate convolution outputs
matched through learned 1×1 adapters where pruning changed the channel count.

Examples
--------
>>> import torch
>>> teacher = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 1, 1))
>>> student = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 1, 1))
>>> d = Distiller(student, teacher, torch.zeros(1, 1, 8, 8), outputs=1.0, features=1.0)
>>> d.layers, list(d.adapters)
(['0'], ['0'])
>>> x = torch.randn(2, 1, 8, 8)
>>> y = student(x)
>>> bool(d.loss(x, y) > 0)
True
"""

from __future__ import annotations

import torch
from torch import nn

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def _scaled_mse(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean over channels of each channel's squared error over its variance in the teacher, so
    maps in different units (DilatedLoc's probability, offsets, z in nm, photons) weigh alike;
    nearly constant channels are scaled by a thousandth of the largest variance instead."""
    dims = [d for d in range(teacher.dim()) if d != 1]
    var = teacher.var(dim=dims)
    var = torch.maximum(var, 1e-3 * var.max()) + 1e-12
    return torch.mean(torch.mean((student - teacher) ** 2, dim=dims) / var)


class Distiller(nn.Module):
    """Hooks on ``features`` evenly spaced convolutions present in both models (by name, the head
    excluded); :meth:`loss` is ``outputs`` × output term + ``features`` × feature term for the
    student's output ``y`` on ``x`` (call it right after the student's forward pass on ``x``).
    ``parameters()`` are the adapters': train them with the student."""

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        example: torch.Tensor,
        outputs: float = 1.0,
        features: float = 1.0,
        layers: int = 4,
    ) -> None:
        super().__init__()
        self.teacher = [teacher.eval()]  # a list: not a submodule, so not trained or saved
        self.outputs, self.features = outputs, features
        ours = dict(student.named_modules())
        convs = [n for n, m in teacher.named_modules() if isinstance(m, _CONVS) and isinstance(ours.get(n), _CONVS)]
        body = convs[:-1]  # the last convolution is the head: the output term covers it
        step = max(1, len(body) // max(layers, 1))
        self.layers = body[step - 1 :: step][:layers] if features > 0 else []
        self._seen: dict[str, dict[str, torch.Tensor]] = {"student": {}, "teacher": {}}
        theirs = dict(teacher.named_modules())
        self._hooks = [ours[n].register_forward_hook(self._keep("student", n)) for n in self.layers]
        self._hooks += [theirs[n].register_forward_hook(self._keep("teacher", n)) for n in self.layers]
        with torch.no_grad():
            student_was = student.training
            student.eval()
            student(example)
            teacher(example)
            student.train(student_was)
        self.adapters = nn.ModuleDict()
        for n in self.layers:
            s, t = self._seen["student"][n], self._seen["teacher"][n]
            adapter = {3: nn.Conv1d, 4: nn.Conv2d, 5: nn.Conv3d}[s.dim()](s.shape[1], t.shape[1], 1)
            if s.shape[1] == t.shape[1]:  # unpruned layer: start as the identity
                with torch.no_grad():
                    adapter.weight.copy_(torch.eye(s.shape[1]).reshape(adapter.weight.shape))
                    adapter.bias.zero_()
            self.adapters[n.replace(".", "_")] = adapter

    def _keep(self, side: str, name: str):
        def hook(module, inputs, output):
            self._seen[side][name] = output

        return hook

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The distillation terms for the student's output ``y`` on ``x``."""
        with torch.no_grad():
            target = self.teacher[0](x)
        total = self.outputs * _scaled_mse(y, target) if self.outputs > 0 else y.new_zeros(())
        if self.layers:
            terms = [
                _scaled_mse(self.adapters[n.replace(".", "_")](self._seen["student"][n]), self._seen["teacher"][n])
                for n in self.layers
            ]
            total = total + self.features * torch.stack(terms).mean()
        return total

    def close(self) -> None:
        """Remove the hooks (the student is saved and exported without them)."""
        for h in self._hooks:
            h.remove()
        self._hooks = []
        self._seen = {"student": {}, "teacher": {}}
