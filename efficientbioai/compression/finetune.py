"""Fine-tuning after pruning: recover the accuracy the removed channels carried.

Order of preference (``prune.fine_tune.mode: auto``): the parser's own ``fine_tune`` (e.g.
DilatedLoc trains on freshly simulated frames), supervised on the parser's training pairs, or
distillation of the unpruned fp32 model's outputs on the calibration inputs (no labels needed).
Supervised and family recipes add distillation from the fp32 model (``distill_outputs`` /
``distill_features``; :mod:`efficientbioai.models.distillation`) to the task loss. The loss and
a held-out metric are recorded every ``eval_every`` steps for the manifest and report.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from efficientbioai.config import FineTuneSection
from efficientbioai.errors import ConfigError
from efficientbioai.models.distillation import Distiller
from efficientbioai.parsers.base import BaseParser
from efficientbioai.parsers.training_crops import tuning_record
from efficientbioai.terminal import bar as progress_bar

log = logging.getLogger(__name__)

#: Batch index of the held-out batch the curve is measured on (far from the training indices).
HELD_OUT = 1_000_000
#: Crops in the held-out batch of supervised fine-tuning.
HELD_OUT_CROPS = 16


def fine_tune(pruned: nn.Module, reference: nn.Module, parser: BaseParser, settings: FineTuneSection) -> dict:
    """Train ``pruned`` in place; returns ``{mode, steps, lr, batch_size, curve}``."""
    if settings.mode == "none" or settings.steps == 0:
        return {"mode": "none", "steps": 0}
    if settings.mode == "auto":
        custom = parser.fine_tune(pruned, reference, settings)
        if custom is not None:
            return custom
    mode = settings.mode
    has_pairs = parser.training_batch(0, 1) is not None
    if mode == "auto":
        mode = "supervised" if has_pairs else "distill"
    if mode == "supervised" and not has_pairs:
        raise ConfigError(
            f"prune.fine_tune.mode 'supervised': parser {type(parser).__name__} has no training pairs; use 'distill'"
        )
    batch = (
        _supervised_batches(parser, settings) if mode == "supervised" else _distill_batches(parser, reference, settings)
    )
    curve = _train(pruned, reference, parser, batch, settings, distill_outputs=mode == "supervised")
    return tuning_record(mode, settings, curve)


Batches = Callable[[int], tuple[torch.Tensor, torch.Tensor]]


def _supervised_batches(parser: BaseParser, settings: FineTuneSection) -> Batches:
    def batch(index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if index == HELD_OUT:  # the curve is measured on the validation split, never trained on
            x, y = parser.training_batch(0, HELD_OUT_CROPS, settings.tile, split="validation")
        else:
            x, y = parser.training_batch(index, settings.batch_size, settings.tile)
        return torch.from_numpy(x), torch.from_numpy(y)

    return batch


def _distill_batches(parser: BaseParser, reference: nn.Module, settings: FineTuneSection) -> Batches:
    """Inputs: the parser's calibration inputs (cycled); targets: the unpruned model's outputs."""
    pool = list(parser.calibration_inputs())
    if not pool:
        raise ConfigError("distillation needs inputs: data.calibration yielded none")
    reference = reference.eval()

    def batch(index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if index == HELD_OUT:  # the last calibration input is held out of training
            xs = [pool[-1]]
        else:
            usable = pool[:-1] or pool
            start = index * settings.batch_size
            xs = [usable[(start + i) % len(usable)] for i in range(settings.batch_size)]
        x = torch.from_numpy(np.concatenate(xs))
        with torch.no_grad():
            y = reference(x)
        return x, y

    return batch


def _train(
    model: nn.Module,
    reference: nn.Module,
    parser: BaseParser,
    batch: Batches,
    settings: FineTuneSection,
    distill_outputs: bool,
) -> list[dict]:
    held_x, held_y = batch(HELD_OUT)
    outputs = settings.distill_outputs if distill_outputs else 0.0  # distill mode's targets are the outputs
    distiller = Distiller(model, reference, held_x[:1], outputs, settings.distill_features)
    opt = torch.optim.Adam([*model.parameters(), *distiller.parameters()], lr=settings.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / settings.steps)))
    curve = [_point(model, parser, 0, None, held_x, held_y)]
    bar = progress_bar(range(settings.steps), desc="fine-tuning", mininterval=2.0)
    for step in bar:
        model.train()
        x, y = batch(step)
        out = model(x)
        loss = parser.fine_tune_loss(out, y) + distiller.loss(x, out)
        if not torch.isfinite(loss):
            raise ConfigError(f"fine-tuning diverged at step {step} (loss {loss.item()}); lower prune.fine_tune.lr")
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % settings.eval_every == 0 or step + 1 == settings.steps:
            curve.append(_point(model, parser, step + 1, loss.item(), held_x, held_y))
            bar.set_postfix(loss=f"{loss.item():.4g}", held_out=f"{curve[-1]['held_out_loss']:.4g}")
    distiller.close()
    model.eval()
    return curve


def _point(model, parser, step, train_loss, x, y) -> dict:
    model.eval()
    with torch.no_grad():
        out = model(x)
        held = float(parser.fine_tune_loss(out, y))
    point = {"step": step, "train_loss": None if train_loss is None else round(train_loss, 6), "held_out_loss": held}
    metric = parser.fine_tune_metric(out.numpy(), y.numpy())
    if metric is not None:
        point[metric[0]] = round(metric[1], 5)
    return point
