"""The driver on one machine: order, bounded read-ahead, errors naming the chunk, Ctrl-C, resume."""

import os
import signal
import threading

import numpy as np
import pytest

from efficientbioai.errors import ChunkError, ConfigError
from efficientbioai.runtime.local_pipeline import Pipeline
from efficientbioai.runtime.settings import RuntimeSection
from efficientbioai.runtime.workers import Worker
from efficientbioai.smlm.io import read_localizations, write_thunderstorm
from tests.runtime.helpers import Doubler, FramesJob, expected


def _run(job, engines, tmp_path=None, **settings):
    s = RuntimeSection(progress=False, **settings)
    pipe = Pipeline(s, [(e, None) for e in engines])
    return pipe.run(job, job.sink(tmp_path, collect=True)), pipe


def test_results_in_frame_order_with_two_slow_workers_and_bounded_memory():
    job = FramesJob(200, chunk=7, batch=3)
    out, pipe = _run(job, [Doubler(0.004), Doubler(0.004)], prefetch=2)
    np.testing.assert_array_equal(out, expected(200))
    assert job.max_alive <= 2 + 2 * 2  # prefetch + two chunks per worker, however long the stack
    assert pipe.stats.units == 200 and pipe.stats.raw_bytes == 200 * 64 and pipe.stats.chunks == 29


def test_csv_written_once_complete_equals_the_whole_table(tmp_path):
    out, _ = _run(FramesJob(50, chunk=8), [Doubler()], tmp_path)
    write_thunderstorm(tmp_path / "ref.csv", expected(50)[:, :6])
    assert (tmp_path / "frames.csv").read_bytes() == (tmp_path / "ref.csv").read_bytes()
    assert not (tmp_path / ".frames.csv.partial").exists()


def test_engine_error_names_the_chunk():
    with pytest.raises(ChunkError, match=r"chunk 3 \(frames 31-40\) failed in an engine worker: RuntimeError: engine"):
        _run(FramesJob(60, chunk=10), [Doubler(fail_at=33.0)])
    assert not [t for t in threading.enumerate() if t.name.startswith("efficientbioai-")]


def test_reader_error_names_the_chunk(monkeypatch):
    job = FramesJob(60, chunk=10)
    real = job.load

    def load(chunk):
        if chunk.index == 2:
            raise OSError("disk on fire")
        return real(chunk)

    job.load = load
    with pytest.raises(ChunkError, match=r"chunk 2 \(frames 21-30\) failed in the reader: OSError: disk on fire"):
        _run(job, [Doubler()])


def test_workers_that_vanish_raise_instead_of_hanging(monkeypatch):
    monkeypatch.setattr(Worker, "run", lambda self: None)
    with pytest.raises(ChunkError, match="every engine worker stopped"):
        _run(FramesJob(20, chunk=5), [Doubler()])


def test_reader_process_crash_names_the_chunk():
    with pytest.raises(ChunkError, match=r"chunk 1 \(frames 6-10\) failed in the reader process"):
        _run(FramesJob(20, chunk=5, crash_chunk=1), [Doubler()], reader="process")


def test_ctrl_c_keeps_finished_chunks_and_resume_completes(tmp_path):
    # Python's own Ctrl-C handling, whatever an earlier test's library left installed or blocked
    # (in a full run, SIGINT once went unhandled here after other suites had run)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    blocked = signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
    try:
        _ctrl_c_then_resume(tmp_path)
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def _ctrl_c_then_resume(tmp_path):
    # Ctrl-C arrives while the reader loads chunk 5 (not after a fixed time: under load a
    # timer could fire after the whole run, or before the first chunk was written).
    job = FramesJob(40, chunk=4, load_delay=0.05)
    real = job.load

    def load(chunk):
        if chunk.index == 5:
            os.kill(os.getpid(), signal.SIGINT)
        return real(chunk)

    job.load = load
    with pytest.raises(KeyboardInterrupt):
        _run(job, [Doubler()], tmp_path)
    assert not [t for t in threading.enumerate() if t.name.startswith("efficientbioai-")]
    assert not (tmp_path / "frames.csv").exists()  # never a half-written output under the final name
    journal = (tmp_path / ".frames.csv.journal.json").read_text()
    part = read_localizations(tmp_path / ".frames.csv.partial")
    done = len(part) // 4
    assert 1 <= done < 10 and f'"done": {done}' in journal
    with open(tmp_path / ".frames.csv.partial", "ab") as f:  # a chunk half-appended when the power went
        f.write(b'999,"garbage')
    out, pipe = _run(FramesJob(40, chunk=4), [Doubler()], tmp_path, resume=True)
    assert pipe.stats.resumed_chunks == done and pipe.stats.units == 40 - 4 * done
    np.testing.assert_array_equal(read_localizations(tmp_path / "frames.csv"), expected(40)[:, :6])
    np.testing.assert_array_equal(out[:, :2], expected(40)[:, :2])  # earlier chunks read back from the file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames.csv"]  # journal gone with the rename


def test_resume_refuses_a_different_run(tmp_path):
    job = FramesJob(40, chunk=4)
    sink = job.sink(tmp_path, True)
    sink.start(job.fingerprint(), False, 10)
    sink.write(job.chunks()[0], job.merge(None, [np.zeros((4, 7))]))
    sink.close()
    with pytest.raises(ConfigError, match="cannot resume .*frames.csv: chunk changed"):
        _run(FramesJob(40, chunk=8), [Doubler()], tmp_path, resume=True)


def test_reading_in_a_process_gives_the_same_result():
    out, _ = _run(FramesJob(30, chunk=4), [Doubler(), Doubler()], reader="process", prefetch=3)
    np.testing.assert_array_equal(out, expected(30))
