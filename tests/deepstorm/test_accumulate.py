"""On-device summation: every engine path gives the clipped sum of per-frame predictions."""

import numpy as np
import torch

from efficientbioai.deepstorm.accumulate import sum_predictions
from efficientbioai.engines.base import BaseInfer
from efficientbioai.engines.torch_engine import TorchModule
from efficientbioai.models.deepstorm import DeepSTORM


class _NumpyEngine(BaseInfer):
    """A host engine around a torch model (stands in for ONNX Runtime / OpenVINO)."""

    name = "numpy"

    def __init__(self, model):
        super().__init__("fp32")
        self.model = model

    def run(self, x):
        with torch.no_grad():
            return [self.model(torch.from_numpy(x)).numpy()]


def _reference(model, frames):
    with torch.no_grad():
        per_frame = DeepSTORM("unet", width=4)
        per_frame.load_state_dict(model.state_dict())
        out = per_frame.eval()(torch.from_numpy(frames))
    return out.clamp_min(0).sum((0, 1)).numpy()


def test_all_paths_give_the_same_sum():
    torch.manual_seed(0)
    frames = (np.random.default_rng(0).random((7, 1, 16, 16)) * 500).astype(np.float32)
    batches = lambda: (frames[i : i + 3] for i in range(0, 7, 3))  # noqa: E731 - uneven last batch
    per_frame = DeepSTORM("unet", width=4).eval()
    summed = DeepSTORM("unet", width=4, sum_frames=True).eval()
    summed.load_state_dict(per_frame.state_dict())
    want = _reference(per_frame, frames)
    for model in (per_frame, summed):
        for engine in (TorchModule(model), _NumpyEngine(model)):
            got = sum_predictions(engine, batches(), (128, 128))
            assert got.shape == (128, 128) and got.dtype == np.float32
            assert np.allclose(got, want, rtol=1e-4, atol=1e-4)
