"""``prune → fine-tune``: pick the layers to protect, run the configured pruner, measure the
result (parameters and FLOPs before and after)."""

from __future__ import annotations

import copy
import fnmatch
import logging

import torch
from torch import nn

from efficientbioai.compression.finetune import fine_tune
from efficientbioai.config import PruneSection
from efficientbioai.errors import ConfigError
from efficientbioai.manifest import flop_count, parameter_count
from efficientbioai.parsers.base import BaseParser
from efficientbioai.registry import PRUNERS

log = logging.getLogger(__name__)


def protected_modules(model: nn.Module, patterns: list[str]) -> tuple[list[nn.Module], list[str]]:
    """Modules whose names match ``patterns`` (fnmatch); each pattern must match something."""
    named = dict(model.named_modules())
    names: list[str] = []
    for pattern in patterns:
        hits = [n for n in named if n and fnmatch.fnmatchcase(n, pattern)]
        if not hits:
            sample = [n for n in named if n][:6]
            raise ConfigError(f"prune.protect: {pattern!r} matches no module; module names look like {sample}")
        names += [h for h in hits if h not in names]
    return [named[n] for n in names], names


def _pruned_copy(
    model: nn.Module, parser: BaseParser, settings: PruneSection, example: torch.Tensor, patterns: list[str]
) -> tuple[nn.Module, list[str], list]:
    """A copy of ``model`` pruned by ``settings`` (no fine-tuning), the protected names, the pruner's history."""
    pruned = copy.deepcopy(model).eval()
    protect, names = protected_modules(pruned, patterns)
    loss_fn = parser.taylor_loss_fn() if settings.importance == "taylor" else None  # only Taylor needs data
    history = PRUNERS.get(settings.library)(settings).prune(pruned, example, protect, loss_fn)
    return pruned, names, history


def prune_to_flops(
    model: nn.Module, parser: BaseParser, settings: PruneSection, example: torch.Tensor, patterns: list[str]
) -> tuple[PruneSection, tuple[nn.Module, list[str], list]]:
    """The smallest ratio, in steps of 0.05, that cuts the FLOPs per tile by ``settings.flops_reduction``:
    the settings with that ratio, and the copy pruned by them (as :func:`_pruned_copy`).

    Users think in speed-ups; the channel ratio that gives one depends on the protected layers
    and on ``round_to`` (DilatedLoc at 48 channels, multiples of 16: 0.35 to 0.5 all give 1.99×).
    Each trial prunes a copy (no fine-tuning), a second or so each.
    """
    target, full = settings.flops_reduction, flop_count(model, example)
    for ratio in [round(0.05 * k, 2) for k in range(1, 19)]:
        trial = settings.model_copy(update={"ratio": ratio})
        result = _pruned_copy(model, parser, trial, example, patterns)
        reduction = full / flop_count(result[0], example)
        if reduction >= target:
            log.info(
                "prune.flops_reduction %.2g: ratio %.2f removes %.2f× of the FLOPs per tile", target, ratio, reduction
            )
            return trial, result
    raise ConfigError(
        f"prune.flops_reduction {target:g} is out of reach: ratio 0.9 removes {reduction:.2f}× of the FLOPs "
        "(the protected layers and round_to keep the rest); ask for less, or protect fewer layers"
    )


def prune_and_fine_tune(
    model: nn.Module, parser: BaseParser, settings: PruneSection, example: torch.Tensor
) -> tuple[nn.Module, dict]:
    """A pruned, fine-tuned copy of ``model`` (left untouched) and what was done, for the manifest."""
    patterns = settings.protect if settings.protect is not None else parser.protected_layers(model)
    before = {"parameters": parameter_count(model), "flops_per_tile": flop_count(model, example)}
    if settings.flops_reduction is not None:
        settings, (pruned, names, history) = prune_to_flops(model, parser, settings, example, patterns)
    else:
        pruned, names, history = _pruned_copy(model, parser, settings, example, patterns)
    after = {"parameters": parameter_count(pruned), "flops_per_tile": flop_count(pruned, example)}
    log.info(
        "pruned %.0f%% (%s, %s): %s → %s parameters",
        100 * settings.ratio,
        settings.importance,
        settings.scope,
        f"{before['parameters']:,}",
        f"{after['parameters']:,}",
    )
    tuning = fine_tune(pruned, model, parser, settings.fine_tune)
    recorded = {"library", "importance", "ratio", "flops_reduction", "scope", "iterative_steps"}
    info = {
        **settings.model_dump(include=recorded),  # in the fields' order
        "protected": names,
        "before": before,
        "after": after,
        "history": history,
        "fine_tune": tuning,
    }
    return pruned.eval(), info
