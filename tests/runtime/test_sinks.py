"""Sinks: outputs under a temporary name, byte-identical to the whole-output writers, resumable."""

import numpy as np
import pytest
import tifffile

from efficientbioai.runtime.block_sink import BlockSink
from efficientbioai.runtime.chunks import plan_blocks, plan_frames
from efficientbioai.runtime.csv_sink import CsvTableSink
from efficientbioai.runtime.sum_sink import SumSink
from efficientbioai.smlm.io import write_thunderstorm


def _tables(n_chunks, rng):
    return [np.column_stack([np.full(3, i + 1.0), rng.random((3, 5)) * 1000, rng.random(3)]) for i in range(n_chunks)]


def test_csv_sink_matches_write_thunderstorm_and_resumes(tmp_path):
    tables = _tables(5, np.random.default_rng(0))
    chunks = plan_frames(5, 1)
    sink = CsvTableSink(tmp_path / "a.csv")
    assert sink.start({"x": 1}, False, 5) == 0
    for c, t in zip(chunks[:3], tables[:3]):
        sink.write(c, t)
    sink.close()  # interrupted
    assert not (tmp_path / "a.csv").exists()
    sink = CsvTableSink(tmp_path / "a.csv")
    assert sink.start({"x": 1}, True, 5) == 3
    for c, t in zip(chunks[3:], tables[3:]):
        sink.write(c, t)
    out = sink.finish()
    write_thunderstorm(tmp_path / "ref.csv", np.concatenate(tables)[:, :6])
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "ref.csv").read_bytes()
    np.testing.assert_allclose(out[:, :6], np.concatenate(tables)[:, :6])
    assert np.isnan(out[:9, 6]).all()  # scores of resumed rows are not in the CSV


@pytest.mark.parametrize("suffix", [".tif", ".zarr", None])
def test_block_sink_writes_each_block_in_place_and_resumes(tmp_path, suffix):
    image = np.random.default_rng(1).random((2, 37, 50)).astype(np.float32)
    blocks = plan_blocks((37, 50), (16, 16), (4, 4))
    path = tmp_path / f"out{suffix}" if suffix else None
    sink = BlockSink(path, (37, 50), (16, 16))
    sink.start({"f": 1}, False, len(blocks))
    for b in blocks[:5]:
        sink.write(b, image[(slice(None), *b.core)])
    if suffix:
        sink.close()
        sink = BlockSink(path, (37, 50), (16, 16))
        assert sink.start({"f": 1}, True, len(blocks)) == 5
    for b in blocks[sink.done :]:
        sink.write(b, image[(slice(None), *b.core)])
    out = sink.finish()
    np.testing.assert_array_equal(out, image)
    if suffix == ".tif":
        np.testing.assert_array_equal(tifffile.imread(path), image)


def test_sum_sink_checkpoints_the_accumulator(tmp_path):
    parts = [np.full((8, 8), i, np.float32) for i in range(4)]
    chunks = plan_frames(4, 1)
    written = {}

    def write(image):
        written["image"] = image
        tifffile.imwrite(tmp_path / "sr.tif", image)
        return tmp_path / "sr.tif"

    sink = SumSink(tmp_path / "sr.tif", (8, 8), finish=lambda a: a[:6, :6].copy(), write=write)
    sink.start({}, False, 4)
    sink.write(chunks[0], parts[0])
    sink.write(chunks[1], parts[1])
    sink.close()
    sink = SumSink(tmp_path / "sr.tif", (8, 8), finish=lambda a: a[:6, :6].copy(), write=write)
    assert sink.start({}, True, 4) == 2
    for c, p in zip(chunks[2:], parts[2:]):
        sink.write(c, p)
    out = sink.finish()
    np.testing.assert_array_equal(out, np.full((6, 6), 6.0))
    assert not list(tmp_path.glob(".*partial*"))
