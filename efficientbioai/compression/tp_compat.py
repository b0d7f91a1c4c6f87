"""Work-arounds that let torch-pruning 1.6 prune MONAI's BasicUNet and DynUNet (and any net
built the same way). Both are applied around the dependency-graph build and undone after.

1. **Concatenation sizes** (VainF/Torch-Pruning#387, ``TypeError: unsupported operand
   type(s) for +: 'int' and 'NoneType'``). torch-pruning infers each ``torch.cat`` input's
   channel count by walking the autograd graph back to a layer with known channels; through
   MONAI's replicate padding and slicing (``CopySlices`` / ``AsStridedBackward0`` nodes) it
   finds none, stores ``None``, and ``update_concat_index_mapping`` sums it (``sum(chs)`` runs
   before its own ``None in chs`` check). :func:`record_concat_sizes` records the real sizes
   of every ``torch.cat`` during the trace, keyed by the output's ``grad_fn``, and fills them
   in before torch-pruning's mapping runs.

2. **Affine instance norm**. ``F.instance_norm`` with affine weights reshapes the input to
   ``(1, B·C, ...)``, repeats the weights per sample and calls batch norm; torch-pruning maps
   channel indices through those reshapes wrongly inside the full networks, so the norm keeps
   its old ``num_features`` while the conv before it shrinks. :func:`unfold_affine_norms`
   replaces each affine ``InstanceNorm`` by a non-affine one followed by a depthwise 1×1 conv
   holding the same scale and shift (same function, a layer torch-pruning handles), and
   :func:`fold_affine_norms` puts a plain affine ``InstanceNorm`` back after pruning.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

_INSTANCE_NORMS = {nn.InstanceNorm1d: nn.Conv1d, nn.InstanceNorm2d: nn.Conv2d, nn.InstanceNorm3d: nn.Conv3d}


@contextlib.contextmanager
def record_concat_sizes() -> Iterator[dict]:
    """Patch ``torch.cat`` and torch-pruning's concat mapping for the duration of a graph build."""
    from torch_pruning import ops
    from torch_pruning.dependency import index_mapping

    sizes: dict = {}
    real_cat, real_update = torch.cat, index_mapping.update_concat_index_mapping

    def cat(tensors, dim=0, *args, **kwargs):
        out = real_cat(tensors, dim, *args, **kwargs)
        if out.grad_fn is not None and dim in (1, -out.dim() + 1):
            sizes[out.grad_fn] = [int(t.shape[1]) for t in tensors]
        return out

    def update(graph, node):
        if node.type == ops.OPTYPE.CONCAT and node.module.concat_sizes is None:
            known = sizes.get(node.grad_fn)
            if known is not None and len(known) == len(node.inputs):
                node.module.concat_sizes = known
        return real_update(graph, node)

    torch.cat, index_mapping.update_concat_index_mapping = cat, update
    try:
        yield sizes
    finally:
        torch.cat, index_mapping.update_concat_index_mapping = real_cat, real_update


class UnfoldedInstanceNorm(nn.Sequential):
    """Non-affine instance norm + depthwise 1×1 conv (the affine part), for pruning only."""


def unfold_affine_norms(model: nn.Module) -> int:
    """Replace every affine ``InstanceNorm{1,2,3}d`` in place; returns how many were replaced."""
    count = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            conv_cls = _INSTANCE_NORMS.get(type(child))
            if conv_cls is None or not child.affine or child.track_running_stats:
                continue  # (running statistics would need pruning too: left to torch-pruning)
            c = child.num_features
            affine = conv_cls(c, c, 1, groups=c, bias=True)
            with torch.no_grad():
                affine.weight.copy_(child.weight.reshape(affine.weight.shape))
                affine.bias.copy_(child.bias)
            norm = type(child)(c, eps=child.eps, affine=False)
            setattr(parent, name, UnfoldedInstanceNorm(norm, affine))
            count += 1
    return count


def fold_affine_norms(model: nn.Module) -> int:
    """Undo :func:`unfold_affine_norms` (with the pruned channel count); returns how many."""
    count = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if not isinstance(child, UnfoldedInstanceNorm):
                continue
            norm, affine = child[0], child[1]
            c = affine.out_channels
            folded = type(norm)(c, eps=norm.eps, affine=True)
            with torch.no_grad():
                folded.weight.copy_(affine.weight.reshape(-1))
                folded.bias.copy_(affine.bias)
            folded.train(child.training)
            setattr(parent, name, folded)
            count += 1
    return count
