"""Scale-out on a 2-worker Dask LocalCluster: chunks and blocks run on workers, merged in order."""

import logging
import os

import numpy as np
import pytest
import torch

from efficientbioai.api.stream import Streamer
from efficientbioai.errors import ChunkError
from efficientbioai.parsers.base import Sample
from efficientbioai.runtime.cluster import run_on_dask
from efficientbioai.runtime.settings import RuntimeSection
from tests.numerics import assert_close_to_peak, assert_same_detections, tolerance_of
from tests.runtime.helpers import DaskFramesJob, expected
from tests.runtime.test_tasks import SMLM, _task

pytest.importorskip("distributed")


class PidFramesJob(DaskFramesJob):
    """Records which worker process ran each frame (column 3)."""

    def postprocess(self, chunk, first, outputs):
        rows = super().postprocess(chunk, first, outputs)
        rows[:, 2] = os.getpid()
        return rows


@pytest.fixture(scope="module")
def cluster():
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):  # a crash fails the chunk at once
        local = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        client = Client(local)
        yield client
        client.close()
        local.close()


def _settings(client, **kw):
    return RuntimeSection(progress=False, cluster=client.scheduler.address, **kw)


def test_chunks_run_on_both_workers_and_merge_in_frame_order(cluster, tmp_path):
    job = PidFramesJob(120, chunk=6)
    out, stats = run_on_dask(cluster, job, job.sink(tmp_path, True), _settings(cluster), "x", None, job.fingerprint())
    np.testing.assert_array_equal(out[:, :2], expected(120)[:, :2])
    assert len(set(out[:, 2])) == 2 and os.getpid() not in set(out[:, 2])
    assert stats.units == 120 and (tmp_path / "frames.csv").is_file()


def test_a_worker_crash_names_the_chunk(cluster, tmp_path):
    job = DaskFramesJob(30, chunk=5, crash_chunk=2)
    # the chunks the dead worker held fail together; the one that crashed it is always named
    named = r"(chunk \d+ \(frames \d+-\d+\), )*chunk 2 \(frames 11-15\)(, chunk \d+ \(frames \d+-\d+\))*"
    with pytest.raises(ChunkError, match=rf"^{named} failed in a Dask worker: KilledWorker"):
        run_on_dask(cluster, job, job.sink(tmp_path, True), _settings(cluster), "x", None, job.fingerprint())
    assert not (tmp_path / "frames.csv").exists()


@pytest.fixture(scope="module")
def dilatedloc_checkpoint(tmp_path_factory):
    task, parser = _task(SMLM)
    torch.manual_seed(0)
    model = parser.build_model()
    with torch.no_grad():
        model.head_p.out.bias.fill_(0.0)
    path = tmp_path_factory.mktemp("dl") / "dl.pt"
    torch.save(model.state_dict(), path)
    return path


def test_localize_on_dask_equals_this_machine(cluster, dilatedloc_checkpoint):
    cfg = {**SMLM, "model": {**SMLM["model"], "checkpoint": str(dilatedloc_checkpoint)}, "engine": {"threads": 1}}
    task, parser = _task(cfg)
    stack = np.random.default_rng(5).gamma(2.0, 60.0, (14, 32, 32)).astype(np.float32) + 100
    local = Streamer(task.config).predict(task, _engine(parser), Sample("s", stack), "torch:fp32")
    task.config.runtime.cluster = cluster.scheduler.address
    streamer = Streamer(task.config)
    try:
        remote = streamer.predict(task, None, Sample("s", stack), "torch:fp32")
    finally:
        streamer.close()
    assert len(local) > 10 and streamer.stats[-1].chunks == 4
    assert_same_detections(remote, local, tolerance_of(parser.load_model(), torch.from_numpy(stack[:, None])))


def test_volume_blocks_on_dask_equal_this_machine(cluster, tiny_checkpoint, tmp_path):
    from efficientbioai.datasets.fluorescence import make_pair
    from tests.helpers import TINY

    cfg = {
        **TINY,
        "model": {**TINY["model"], "checkpoint": str(tiny_checkpoint)},
        "inference": {"tile": [32, 32], "batch_size": 2},
        "engine": {"threads": 1},
        "runtime": {"block": [32, 48], "progress": False},
    }
    task, parser = _task(cfg)
    image = np.clip(make_pair((70, 90), 8)[0], 0, None)[None].astype(np.float32)
    local = Streamer(task.config).predict(task, _engine(parser), Sample("v", image), "torch:fp32")
    task.config.runtime.cluster = cluster.scheduler.address
    streamer = Streamer(task.config)
    try:
        remote = streamer.predict(task, None, Sample("v", image), "torch:fp32", folder=tmp_path)
    finally:
        streamer.close()
    assert streamer.stats[-1].chunks == 3 * 2  # map_overlap blocks, each run on a worker
    tol = tolerance_of(parser.load_model(), torch.from_numpy(task.parser.preprocess(image)[None, :, :32, :32]))
    assert_close_to_peak(remote, local, tol)
    assert (tmp_path / "v.tif").is_file()


def _engine(parser):
    from efficientbioai.engines.torch_engine import TorchModule

    return TorchModule(parser.load_model(), threads=1)
