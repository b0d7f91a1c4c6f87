"""Deep-STORM's frame sum: every engine path gives the clipped sum of per-frame predictions."""

import numpy as np
import torch

from efficientbioai.config import parse_config
from efficientbioai.engines.base import BaseInfer
from efficientbioai.engines.torch_engine import TorchModule
from efficientbioai.models.deepstorm import DeepSTORM
from efficientbioai.parsers.base import Sample, create_parser
from efficientbioai.registry import TASKS
from tests.deepstorm.helpers import TINY
from tests.numerics import assert_close_to_peak, tolerance_of


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
    """The reconstruct task's in-memory path (its streaming job, run here) sums the clipped
    per-frame predictions for torch (on the device) and host engines, per-frame or summed graphs."""
    torch.manual_seed(0)
    frames = (np.random.default_rng(0).random((7, 16, 16)) * 500).astype(np.float32)
    config = parse_config({**TINY, "inference": {"tile": [16, 16], "batch_size": 3}})  # uneven last batch
    parser = create_parser(config)
    task = TASKS.get("reconstruct")(config, parser)
    per_frame = DeepSTORM("unet", width=4).eval()
    summed = DeepSTORM("unet", width=4, sum_frames=True).eval()
    summed.load_state_dict(per_frame.state_dict())
    want = _reference(per_frame, frames[:, None])
    for model in (per_frame, summed):
        for engine in (TorchModule(model), _NumpyEngine(model)):
            got = task.predict(engine, Sample("s", frames))
            assert got.shape == (128, 128) and got.dtype == np.float32
            assert_close_to_peak(got, want, tolerance_of(per_frame, torch.from_numpy(frames[:, None])))
