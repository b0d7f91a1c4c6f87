"""Deep-STORM's loss: MSE between the blurred prediction and the (blurred) target, plus an L1
sparsity term that pushes the prediction towards a few bright spikes.

``L = mean((g ⊛ ŷ − t)²) + λ · mean|ŷ|`` with ``t = scale · (g ⊛ spikes)``. Keras Deep-STORM
blurs the prediction with 2g (its ``matlab_style_gauss2D`` doubles the kernel), which only
halves the spike amplitude the network learns; here the same g is used on both sides, so a
predicted emitter integrates to ``scale``.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from efficientbioai.deepstorm.kernel import torch_blur


def deepstorm_loss(
    prediction: torch.Tensor, target: torch.Tensor, sigma_px: float = 1.0, l1_weight: float = 1.0
) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss and its parts (``mse``, ``l1``) for logging.

    Examples
    --------
    >>> spikes = torch.zeros(1, 1, 16, 16); spikes[0, 0, 8, 8] = 100.0
    >>> loss, parts = deepstorm_loss(spikes, torch_blur(spikes, 1.0), 1.0, l1_weight=0.0)
    >>> float(loss)
    0.0
    """
    mse = F.mse_loss(torch_blur(prediction, sigma_px), target)
    l1 = prediction.abs().mean()
    return mse + l1_weight * l1, {"mse": mse.item(), "l1": l1.item()}
