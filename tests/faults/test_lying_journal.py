"""Resume checks the partial file against the journal and cuts back to the last chunk that
verifies: a journal that claims more than the file holds never yields missing frames."""

import json

import numpy as np

from efficientbioai.runtime.sink import crc32
from efficientbioai.smlm.io import read_localizations
from tests.runtime.helpers import Doubler, FramesJob, expected
from tests.runtime.test_pipeline import _run


def _interrupted(tmp_path, chunks_done: int):
    """A run of 40 frames in chunks of 4 stopped after ``chunks_done`` chunks."""
    job = FramesJob(40, chunk=4)
    sink = job.sink(tmp_path, True)
    sink.start(job.fingerprint(), False, 10)
    for chunk in job.chunks()[:chunks_done]:
        sink.write(chunk, expected(40)[chunk.start : chunk.stop])
    sink.close()
    return tmp_path / ".frames.csv.journal.json", tmp_path / ".frames.csv.partial"


def test_a_journal_claiming_more_chunks_than_the_file_holds_is_cut_back(tmp_path):
    journal, part = _interrupted(tmp_path, 6)
    state = json.loads(journal.read_text())
    size = part.stat().st_size
    with open(part, "r+b") as f:  # the last two chunks' bytes never reached the disk
        f.truncate(state["chunks"][3][0])
    assert part.stat().st_size < size and state["done"] == 6
    out, pipe = _run(FramesJob(40, chunk=4), [Doubler()], tmp_path, resume=True)
    assert pipe.stats.resumed_chunks == 4  # chunks 5 and 6 recomputed, not skipped
    np.testing.assert_array_equal(read_localizations(tmp_path / "frames.csv"), expected(40)[:, :6])


def test_corrupted_bytes_inside_the_file_cut_back_to_the_chunk_before(tmp_path):
    journal, part = _interrupted(tmp_path, 6)
    state = json.loads(journal.read_text())
    start = state["chunks"][1][0]  # first byte of chunk 3
    data = bytearray(part.read_bytes())
    data[start + 3] = ord("9") if data[start + 3] != ord("9") else ord("8")  # same size, one digit changed
    part.write_bytes(bytes(data))
    assert crc32(bytes(data[start : state["chunks"][2][0]])) != state["chunks"][2][2]
    out, pipe = _run(FramesJob(40, chunk=4), [Doubler()], tmp_path, resume=True)
    assert pipe.stats.resumed_chunks == 2
    np.testing.assert_array_equal(read_localizations(tmp_path / "frames.csv"), expected(40)[:, :6])


def test_a_journal_of_a_longer_run_is_not_believed(tmp_path):
    journal, part = _interrupted(tmp_path, 3)
    state = json.loads(journal.read_text())
    state["done"] = 9  # the lie of the issue: more chunks than were ever written
    journal.write_text(json.dumps(state))
    out, pipe = _run(FramesJob(40, chunk=4), [Doubler()], tmp_path, resume=True)
    assert pipe.stats.resumed_chunks == 3 and pipe.stats.units == 40 - 12
    np.testing.assert_array_equal(read_localizations(tmp_path / "frames.csv"), expected(40)[:, :6])


def test_a_sum_accumulator_that_does_not_match_its_journal_starts_over(tmp_path):
    """Deep-STORM's accumulator holds only the latest sum: if it fails its CRC there is no
    earlier chunk to cut back to, so the run starts again rather than double-count frames."""
    from efficientbioai.runtime.chunks import plan_frames
    from efficientbioai.runtime.sum_sink import SumSink

    def sink():
        return SumSink(tmp_path / "sr.tif", (4, 4), finish=lambda a: a)

    chunks = plan_frames(12, 4)
    first = sink()
    first.start({"run": 1}, False, 3)
    for c in chunks[:2]:
        first.write(c, np.ones((4, 4), np.float32))
    first.close()
    acc = first._partial()
    np.save(acc, np.full((4, 4), 7, np.float32))  # a sum the journal never recorded
    again = sink()
    assert again.start({"run": 1}, True, 3) == 0 and float(again.acc.sum()) == 0.0
