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


def prune_and_fine_tune(
    model: nn.Module, parser: BaseParser, settings: PruneSection, example: torch.Tensor
) -> tuple[nn.Module, dict]:
    """A pruned, fine-tuned copy of ``model`` (left untouched) and what was done, for the manifest."""
    pruned = copy.deepcopy(model).eval()
    patterns = settings.protect if settings.protect is not None else parser.protected_layers(pruned)
    protect, names = protected_modules(pruned, patterns)
    before = {"parameters": parameter_count(model), "flops_per_tile": flop_count(model, example)}
    pruner = PRUNERS.get(settings.library)(settings)
    history = pruner.prune(pruned, example, protect, parser.taylor_loss_fn())
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
    info = {
        "library": settings.library,
        "importance": settings.importance,
        "ratio": settings.ratio,
        "scope": settings.scope,
        "iterative_steps": settings.iterative_steps,
        "protected": names,
        "before": before,
        "after": after,
        "history": history,
        "fine_tune": tuning,
    }
    return pruned.eval(), info
