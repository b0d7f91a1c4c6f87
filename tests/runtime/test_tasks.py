"""Each task streamed in chunks gives what ``Task.predict`` gives on the whole input."""

import numpy as np
import pytest
import torch
from torch import nn

from efficientbioai.config import parse_config
from efficientbioai.engines.torch_engine import TorchModule
from efficientbioai.io.frames import ArraySource
from efficientbioai.parsers.base import Sample, create_parser
from efficientbioai.registry import TASKS
from efficientbioai.runtime.local_pipeline import Pipeline
from tests.helpers import TINY
from tests.numerics import assert_close_to_peak, assert_same_detections, tolerance_of

SMLM = {
    "model": {"parser": "dilatedloc", "params": {"width": 8}},
    "simulation": {"frame_shape": [32, 32], "test": {"frames": 6}},
    "inference": {"task": "localize", "tile": [32, 32], "batch_size": 3},
    "runtime": {"chunk_frames": 4, "progress": False},
}


def _task(cfg: dict):
    config = parse_config(cfg)
    parser = create_parser(config)
    return TASKS.get(parser.task_name)(config, parser), parser


def _stream(task, engine, sample, workers=1, folder=None):
    job = task.stream(sample)
    pipe = Pipeline(task.config.runtime, [(engine, None)] * workers)
    return pipe.run(job, job.sink(folder, True))


def _detecting_dilatedloc(parser, frames: int = 1):
    torch.manual_seed(0)
    model = parser.build_model().eval()
    with torch.no_grad():
        model.head_p.out.bias.fill_(0.0)  # an untrained net that still detects here and there
    return TorchModule(model)


@pytest.mark.parametrize("frames", [1, 3])
def test_localize_chunks_equal_the_whole_stack(frames, tmp_path):
    cfg = {**SMLM, "model": {"parser": "dilatedloc", "params": {"width": 8, "frames": frames}}}
    task, parser = _task(cfg)
    engine = _detecting_dilatedloc(parser, frames)
    stack = np.random.default_rng(1).gamma(2.0, 60.0, (11, 33, 35)).astype(np.float32) + 100
    whole = task.predict(engine, Sample("s", stack))
    streamed = _stream(task, engine, Sample("s", stack), workers=2, folder=tmp_path)
    assert len(whole) > 20
    job = task.stream(Sample("s", stack[:, :32, :32]))  # the network inputs, as the job cuts them
    windows = torch.from_numpy(np.concatenate([x for c in job.chunks() for x, _ in job.batches(c, job.load(c))]))
    tol = tolerance_of(engine.model, windows)  # batch sizes differ at chunk borders: only rounding
    assert_same_detections(streamed, whole, tol)
    assert (tmp_path / "s.csv").is_file()


class PointNet(nn.Module):
    """A pixel-wise stand-in for DilatedLoc: p = frame / 100 and zero offsets, so tiles see what the frame sees."""

    def forward(self, x):
        p = x[:, :1] / 100.0
        zeros = torch.zeros_like(p)
        return torch.cat([p, zeros, zeros, zeros, p, zeros, zeros, zeros + 0.1, zeros + 0.1], 1)


def test_large_fields_are_tiled_and_overlap_detections_reported_once():
    cfg = {**SMLM, "runtime": {**SMLM["runtime"], "field_tile": [32, 32], "field_margin": 6}}
    task, _ = _task(cfg)
    frames = np.zeros((5, 70, 90), np.float32)
    rng = np.random.default_rng(2)
    for f in frames:  # isolated bright pixels everywhere, many in tile overlaps
        rows, cols = rng.integers(1, 69, 40), rng.integers(1, 89, 40)
        f[rows, cols] = 90.0
    engine = TorchModule(PointNet())
    job = task.stream(Sample("wide", frames))
    assert len(job.tiles) == 4 * 5  # cores of 20 px: 4 rows × 5 columns of 32×32 tiles
    tiled = _stream(task, engine, Sample("wide", frames))
    whole = task.predict(engine, Sample("wide", frames))
    assert len(whole) > 100
    key = lambda t: t[np.lexsort((t[:, 1], t[:, 2], t[:, 0]))]  # noqa: E731
    np.testing.assert_allclose(key(tiled)[:, :6], key(whole)[:, :6], atol=1e-3)


def test_reconstruct_chunks_sum_to_the_whole_stack(tmp_path):
    from tests.deepstorm.helpers import TINY as DS

    task, parser = _task({**DS, "runtime": {"chunk_frames": 5, "progress": False}})
    torch.manual_seed(0)
    engine = TorchModule(parser.build_model().eval())
    stack = np.random.default_rng(3).gamma(2.0, 50.0, (13, 30, 34)).astype(np.float32)
    whole = task.predict(engine, Sample("ds", stack))
    streamed = _stream(task, engine, Sample("ds", stack), folder=tmp_path)
    assert streamed.shape == whole.shape == (30 * 8, 34 * 8)
    np.testing.assert_allclose(streamed, whole, rtol=1e-4, atol=1e-4 * float(whole.max()))
    assert (tmp_path / "ds_sr.tif").is_file() and (tmp_path / "ds_sr.png").is_file()


@pytest.fixture(scope="module")
def denoiser(tiny_checkpoint):
    cfg = {
        **TINY,
        "model": {**TINY["model"], "checkpoint": str(tiny_checkpoint)},  # trained: outputs are image-like
        "inference": {"tile": [32, 32], "batch_size": 2, "overlap": 0.25},
        "runtime": {"progress": False},
    }
    task, parser = _task(cfg)
    return task, TorchModule(parser.load_model())


def test_denoise_one_block_equals_predict_and_blocks_are_close(denoiser, tmp_path):
    task, engine = denoiser
    from efficientbioai.datasets.fluorescence import make_pair

    image = np.clip(make_pair((70, 90), 7)[0], 0, None)[None].astype(np.float32)
    whole = task.predict(engine, Sample("img", image))
    tol = tolerance_of(engine.model, torch.from_numpy(task.parser.preprocess(image)[None, :, :32, :32]))
    assert_close_to_peak(_stream(task, engine, Sample("img", image)), whole, tol)
    task.config.runtime.block = [32, 40]
    try:
        job = task.stream(Sample("img", image))
        assert len(job.chunks()) == 3 * 3 and job.halo == (16, 16)
        blocks = _stream(task, engine, Sample("img", image), workers=2, folder=tmp_path)
        # lazily read from disk: normalised with whole-image statistics, block by block
        lazy = _stream(task, engine, Sample("img", ArraySource(image[0], "img")))
    finally:
        task.config.runtime.block = None
    assert blocks.shape == whole.shape
    assert np.corrcoef(blocks.ravel(), whole.ravel())[0, 1] > 0.99
    np.testing.assert_allclose(lazy, blocks, rtol=1e-4, atol=1e-4)
    import tifffile

    np.testing.assert_array_equal(tifffile.imread(tmp_path / "img.tif"), blocks)
