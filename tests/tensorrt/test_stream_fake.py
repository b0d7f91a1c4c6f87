"""The streaming runtime on TensorRT (FAKE ``tensorrt``, host stand-in GPU): two workers, two contexts.

Each worker owns a ``TRTModule`` — its own execution context on its own stream — and the task's
post-processing reads the outputs where TensorRT left them (``run_device``), after the stream is
synchronised. The fake engine computes ``2 * x``, so the blended result is twice the input.
"""

import numpy as np

from efficientbioai.compression.convert_tensorrt import build_engine
from efficientbioai.config import parse_config
from efficientbioai.engines.tensorrt_engine import TRTModule
from efficientbioai.parsers.base import Sample, create_parser
from efficientbioai.registry import TASKS
from efficientbioai.runtime.local_pipeline import Pipeline
from tests.tensorrt.conftest import TRT_TINY

SHAPES = {"input": ((1, 1, 32, 32), (2, 1, 32, 32), (4, 1, 32, 32))}


def test_two_tensorrt_contexts_stream_blocks(fake_trt, trt_qdq, tmp_path):
    cfg = parse_config(
        {
            **TRT_TINY,
            "inference": {"tile": [32, 32], "batch_size": 2},
            "runtime": {"block": [32, 32], "progress": False},
        }
    )
    path = build_engine(trt_qdq, tmp_path / "m.engine", "int8", cfg.engine.tensorrt, SHAPES, None, "GPU X")
    engines = [TRTModule(path, "int8"), TRTModule(path, "int8")]
    assert engines[0].context is not engines[1].context
    parser = create_parser(cfg)
    task = TASKS.get("denoise")(cfg, parser)
    image = np.random.default_rng(0).random((1, 70, 90)).astype(np.float32) * 100
    job = task.stream(Sample("img", image))
    fake_trt.calls.clear()
    out = Pipeline(cfg.runtime, [(e, None) for e in engines]).run(job, job.sink(tmp_path, True))
    np.testing.assert_allclose(out, 2 * parser.preprocess(image)[0], rtol=1e-5, atol=1e-5)
    names = [c[0] for c in fake_trt.calls]
    assert names.count("execute_async_v3") >= len(job.chunks())
    assert "to_host" not in names  # outputs were read on the "device", never copied back by the engine
    assert (tmp_path / "img.tif").is_file()
