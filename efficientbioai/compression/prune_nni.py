"""Optional pruning plugin on Microsoft NNI (``prune.library: nni``), 2D networks only.

NNI masks channels with its L1/L2/FPGM norm pruners, then ``ModelSpeedup`` rewrites the
network without them, tracing it with ``torch.fx.symbolic_trace`` (given as ``graph_module``:
NNI's own tracer fails on MONAI's blocks). NNI's speed-up leaves modules in training mode, so
the model is put back in eval mode. NNI pins ``filelock<3.12``, which clashes with the default
environment; install it in its own one (``.ci/run`` does, for its tests).
"""

from __future__ import annotations

import torch
from torch import nn

from efficientbioai.config import PruneSection
from efficientbioai.errors import BackendUnavailableError, ConfigError
from efficientbioai.registry import register_pruner

_PRUNERS = {"l1": "L1NormPruner", "l2": "L2NormPruner", "fpgm": "FPGMPruner"}


@register_pruner("nni")
class NNIPruner:
    """``prune(model, example, protect)`` with NNI; same contract as the torch-pruning one."""

    def __init__(self, settings: PruneSection) -> None:
        self.settings = settings

    def prune(self, model: nn.Module, example: torch.Tensor, protect: list[nn.Module], loss_fn=None) -> list[dict]:
        s = self.settings
        if example.dim() != 4:
            raise ConfigError(
                f"prune.library 'nni' handles 2D networks only (input {tuple(example.shape)}); "
                "use prune.library: torch_pruning for 3D"
            )
        if s.importance not in _PRUNERS:
            raise ConfigError(f"prune.library 'nni' supports importance {sorted(_PRUNERS)}, not {s.importance!r}")
        if s.scope != "uniform" or s.iterative_steps != 1:
            raise ConfigError("prune.library 'nni' supports scope 'uniform' with iterative_steps 1")
        try:
            from nni.compression import pruning
            from nni.compression.speedup import ModelSpeedup
        except ImportError:
            raise BackendUnavailableError(
                "prune.library 'nni' needs NNI (pip install nni) in its own environment: it pins filelock<3.12"
            ) from None
        names = {id(m): n for n, m in model.named_modules()}
        protected = sorted({names[id(sub)] for m in protect for sub in m.modules() if id(sub) in names})
        config_list = [
            {"op_types": ["Conv2d"], "sparse_ratio": s.ratio, **({"exclude_op_names": protected} if protected else {})}
        ]
        model.eval()
        pruner = getattr(pruning, _PRUNERS[s.importance])(model, config_list)
        _, masks = pruner.compress()
        pruner.unwrap_model()
        ModelSpeedup(model, example, masks, graph_module=torch.fx.symbolic_trace(model)).speedup_model()
        model.eval()
        return [{"step": 1, "parameters": sum(p.numel() for p in model.parameters())}]
