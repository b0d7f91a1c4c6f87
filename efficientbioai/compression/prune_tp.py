"""Structured (channel) pruning with torch-pruning: the default ``prune.library``.

Whole output channels are removed from convolutions (and everything that depends on them:
norms, the next layer's inputs, concatenations), so the pruned network is physically smaller
and faster on every engine — no sparse kernels needed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
from torch import nn

from efficientbioai.compression.tp_compat import fold_affine_norms, record_concat_sizes, unfold_affine_norms
from efficientbioai.config import PruneSection
from efficientbioai.errors import BackendUnavailableError, ConfigError, ExportError
from efficientbioai.registry import register_pruner

log = logging.getLogger(__name__)

#: A function that runs the model on a batch and returns a scalar loss (Taylor importance).
LossFn = Callable[[nn.Module], torch.Tensor]


def _importance(tp, name: str):
    imp = tp.importance
    return {
        "l1": lambda: imp.MagnitudeImportance(p=1),
        "l2": lambda: imp.MagnitudeImportance(p=2),
        "fpgm": lambda: imp.FPGMImportance(),
        "taylor": lambda: imp.GroupTaylorImportance(),
    }[name]()


@register_pruner("torch_pruning")
class TorchPruner:
    """``prune(model, example, protect)`` removes ``settings.ratio`` of the channels in place.

    Parameters
    ----------
    settings : PruneSection
        Importance (L1, L2, FPGM, Taylor), ratio, uniform or global scope, iterative steps,
        channel rounding.
    """

    def __init__(self, settings: PruneSection) -> None:
        self.settings = settings

    def prune(
        self, model: nn.Module, example: torch.Tensor, protect: list[nn.Module], loss_fn: LossFn | None = None
    ) -> list[dict]:
        """Prune ``model`` in place; returns parameter counts after each step."""
        try:
            import torch_pruning as tp
        except ImportError:
            raise BackendUnavailableError("pruning needs torch-pruning: pip install torch-pruning") from None
        s = self.settings
        if s.importance == "taylor" and loss_fn is None:
            raise ConfigError(
                "prune.importance 'taylor' needs gradients from training data, and this parser has none; "
                "use l1, l2 or fpgm"
            )
        model.eval()
        unfolded = unfold_affine_norms(model)
        try:
            with record_concat_sizes():
                pruner = tp.pruner.MetaPruner(
                    model,
                    example,
                    importance=_importance(tp, s.importance),
                    pruning_ratio=s.ratio,
                    global_pruning=s.scope == "global",
                    iterative_steps=s.iterative_steps,
                    ignored_layers=protect,
                    round_to=s.round_to,
                )
                history = []
                for step in range(s.iterative_steps):
                    if s.importance == "taylor":
                        model.zero_grad()
                        loss_fn(model).backward()
                    pruner.step()
                    history.append({"step": step + 1, "parameters": sum(p.numel() for p in model.parameters())})
        except (TypeError, RuntimeError, ValueError, IndexError, KeyError) as exc:
            raise ExportError(
                f"torch-pruning could not prune {type(model).__name__}: {type(exc).__name__}: {exc}. "
                "Protect the layers involved with prune.protect, or set prune.enabled: false"
            ) from exc
        finally:
            fold_affine_norms(model)
        model.zero_grad(set_to_none=True)
        log.debug("pruned %s (%d affine norms handled): %s", type(model).__name__, unfolded, history[-1])
        try:
            with torch.no_grad():
                model(example)
        except Exception as exc:  # a layer torch-pruning did not resize
            raise ExportError(
                f"the pruned {type(model).__name__} no longer runs ({type(exc).__name__}: {exc}); "
                "protect the layer named in the message with prune.protect"
            ) from exc
        return history
