"""Benchmark the streaming runtime on DilatedLoc int8 / OpenVINO: efficiency, MB/s, workers, memory.

One run, one engine object, on this machine:

- pipeline efficiency = end-to-end frames/s (uint16 TIFF on disk → ThunderSTORM CSV, through
  :class:`~efficientbioai.api.stream.Streamer`) ÷ engine-only frames/s (the same frames
  pre-loaded as float32 batches, ``engine.map_batches`` with the same requests in flight),
  measured in alternating rounds so background load hits both alike;
- throughput (frames/s and MB/s of raw data) with 1 worker (all threads) vs 2 workers (half
  the threads each), and optionally a 2-worker Dask LocalCluster;
- peak RSS of ``efficientbioai stream``-equivalent runs on 1,000 and 20,000 frames, each in a
  fresh process.

    .venv/bin/python bench/bench_stream.py [--frames 1000] [--rounds 3] [--rss 1000,20000] [--dask]

Frames are 64×64 uint16 ADU, simulated from ``configs/dilatedloc_astig3d.yaml`` (a pool of 256
distinct frames, repeated to the stack length). Numbers are measured, not asserted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from efficientbioai.api.stream import Streamer  # noqa: E402
from efficientbioai.compression.build_experiment import compress  # noqa: E402
from efficientbioai.config import dump_config, load_config  # noqa: E402
from efficientbioai.engines.factory import create_engine  # noqa: E402
from efficientbioai.evaluation.report import describe_machine  # noqa: E402
from efficientbioai.io.frames import open_frames  # noqa: E402
from efficientbioai.manifest import machine  # noqa: E402
from efficientbioai.parsers.base import Sample, create_parser  # noqa: E402
from efficientbioai.registry import TASKS  # noqa: E402
from efficientbioai.runtime.progress import peak_rss_mb  # noqa: E402
from efficientbioai.runtime.settings import WorkerSection  # noqa: E402

VARIANT = "openvino:int8"
POOL = 256

log = logging.getLogger("bench_stream")


def experiment(out: Path, recompress: bool) -> Path:
    """Compress the shipped astigmatic DilatedLoc once (reused unless ``recompress``)."""
    deploy = out / "stream_dl" / "deploy.yaml"
    if deploy.is_file() and not recompress:
        return deploy
    cfg = load_config(ROOT / "configs" / "dilatedloc_astig3d.yaml")
    cfg.report.compare = ["torch:fp32", VARIANT]
    staged = out / "bench_stream.yaml"
    staged.parent.mkdir(parents=True, exist_ok=True)
    staged.write_text(dump_config(cfg))
    return compress(staged, out / "stream_dl", overwrite=True)


def stack(deploy: Path, frames: int, folder: Path) -> Path:
    """A ``frames``-long uint16 TIFF (one contiguous series), written page by page."""
    import tifffile

    from efficientbioai.smlm.simulated_training import SEEDS, simulate_batch

    path = folder / f"stack_{frames}.tif"
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    sim = load_config(deploy).simulation.for_test()
    pool = np.clip(simulate_batch(sim, POOL, SEEDS["evaluation"] + 7)[0][:, 0], 0, 65535).astype(np.uint16)
    tmp = path.with_suffix(".partial")
    with tifffile.TiffWriter(tmp) as w:
        w.write((pool[i % POOL] for i in range(frames)), shape=(frames, *pool.shape[1:]), dtype=np.uint16)
    tmp.replace(path)
    return path


def engine_only(engine, path: Path, batch: int) -> dict:
    """Frames/s (wall) and CPU s/frame of ``engine.map_batches`` on the stack pre-loaded as float32 batches."""
    frames = np.asarray(open_frames(path).read(0, 10**9), np.float32)[:, None]
    batches = [np.ascontiguousarray(frames[i : i + batch]) for i in range(0, len(frames), batch)]
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in engine.map_batches(iter(batches)):
        pass
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"fps": len(frames) / wall, "cpu_per_frame": cpu / len(frames)}


def end_to_end(config, parser, engine, path: Path, out: Path, workers: list[WorkerSection] | None = None) -> dict:
    """TIFF on disk → CSV through the runtime; frames/s and MB/s of raw data."""
    config = config.model_copy(deep=True)
    config.runtime.progress = False
    if workers is not None:
        config.runtime.workers = workers
    task = TASKS.get(parser.task_name)(config, parser)
    streamer = Streamer(config)
    cpu = time.process_time()
    try:
        streamer.predict(task, engine, Sample(path.stem, open_frames(path)), VARIANT, out, collect=False)
    finally:
        streamer.close()
    cpu = time.process_time() - cpu
    stats = streamer.stats[-1]  # from the first read to the finished CSV renamed into place
    return {
        "fps": stats.units_per_s,
        "mb_s": stats.mb_per_s,
        "seconds": stats.seconds,
        "cpu_per_frame": cpu / stats.units,
        "rss_mb": stats.peak_rss_mb,
    }


def _vm(field: str) -> float:
    """``VmHWM`` (peak) or ``VmRSS`` (current) of this process from /proc, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1000
    return float("nan")


def child_rss(deploy: Path, path: Path, out: Path) -> None:
    """In a fresh process: load the engine, reset the kernel's peak-RSS mark, stream ``path`` to CSV.

    ``ru_maxrss`` is the peak of the whole process (loading and compiling the engine included);
    the peak *while streaming* is ``VmHWM`` after writing 5 to ``/proc/self/clear_refs``, which
    resets the mark to the current RSS once the engine is loaded.
    """
    config = load_config(deploy)
    config.runtime.progress = False
    parser = create_parser(config)
    engine = create_engine(VARIANT, config, parser)
    engine.warmup(np.zeros((config.inference.batch_size, 1, 64, 64), np.float32) + 100)
    loaded = _vm("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    task = TASKS.get(parser.task_name)(config, parser)
    streamer = Streamer(config)
    try:
        streamer.predict(task, engine, Sample(path.stem, open_frames(path)), VARIANT, out, collect=False)
    finally:
        streamer.close()
    stats = streamer.stats[-1]
    print(
        json.dumps(
            {
                "loaded_mb": loaded,
                "streaming_peak_mb": _vm("VmHWM"),
                "process_peak_mb": peak_rss_mb(),
                "fps": stats.units_per_s,
                "mb_s": stats.mb_per_s,
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=500, help="stack length for the throughput rounds")
    ap.add_argument("--rounds", type=int, default=6, help="alternating engine-only / end-to-end pairs")
    ap.add_argument("--worker-rounds", type=int, default=3, help="alternating 1-worker / 2-worker pairs")
    ap.add_argument("--chunk-frames", type=int, default=64, help="runtime.chunk_frames for the throughput runs")
    ap.add_argument("--rss", default="1000,20000", help="stack lengths for the peak-RSS runs ('' to skip)")
    ap.add_argument("--dask", action="store_true", help="also run a 2-worker Dask LocalCluster")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "bench")
    ap.add_argument("--recompress", action="store_true")
    ap.add_argument("--child-rss", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("nncf", "openvino", "tifffile"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    deploy = experiment(args.out, args.recompress)
    data, preds = args.out / "stream_data", args.out / "stream_predictions"
    if args.child_rss:
        child_rss(deploy, args.child_rss, preds)
        return

    config = load_config(deploy)
    parser = create_parser(config)
    engine = create_engine(VARIANT, config, parser)
    path = stack(deploy, args.frames, data)
    frame_mb = open_frames(path).frame_bytes / 1e6
    batch = config.inference.batch_size
    engine.warmup(np.zeros((batch, 1, 64, 64), np.float32) + 100)
    config.runtime.chunk_frames = args.chunk_frames
    load_before = os.getloadavg()[0]
    rounds = []
    for r in range(args.rounds):  # short alternating pairs: background load hits both sides alike
        eng = engine_only(engine, path, batch)
        e2e = end_to_end(config, parser, engine, path, preds)
        rounds.append({"engine": eng, "e2e": e2e, "ratio": e2e["fps"] / eng["fps"]})
        print(
            f"round {r + 1}: engine {eng['fps']:.1f} frames/s, end to end {e2e['fps']:.1f} frames/s, "
            f"ratio {rounds[-1]['ratio']:.3f}; CPU s/frame {eng['cpu_per_frame']:.4f} vs {e2e['cpu_per_frame']:.4f}",
            flush=True,
        )
    threads = engine.threads
    half = max(1, threads // 2)
    workers = []
    for _ in range(args.worker_rounds):
        one = end_to_end(config, parser, engine, path, preds, [WorkerSection(threads=threads, streams=2)])
        two = end_to_end(config, parser, None, path, preds, [WorkerSection(threads=half, streams=1)] * 2)
        workers.append({"one": one, "two": two})
        print(f"workers: 1 → {one['fps']:.1f} frames/s, 2 → {two['fps']:.1f} frames/s", flush=True)
    cpu_eng = np.mean([x["engine"]["cpu_per_frame"] for x in rounds])
    cpu_e2e = np.mean([x["e2e"]["cpu_per_frame"] for x in rounds])
    results = {
        "machine": machine(),
        "frames": args.frames,
        "chunk_frames": args.chunk_frames,
        "frame_bytes": int(frame_mb * 1e6),
        "engine": engine.describe(),
        "load_average": [load_before, os.getloadavg()[0]],
        "rounds": rounds,
        "engine_fps_median": float(np.median([x["engine"]["fps"] for x in rounds])),
        "e2e_fps_median": float(np.median([x["e2e"]["fps"] for x in rounds])),
        "efficiency_median_ratio": float(np.median([x["ratio"] for x in rounds])),
        "efficiency_cpu": float(cpu_eng / cpu_e2e),
        "workers": workers,
        "one_worker": _median(w["one"] for w in workers),
        "two_workers": _median(w["two"] for w in workers),
    }
    if args.dask:
        dask_cfg = config.model_copy(deep=True)
        dask_cfg.runtime.cluster, dask_cfg.runtime.cluster_workers = "local", 2
        task = TASKS.get(parser.task_name)(dask_cfg, parser)
        streamer = Streamer(dask_cfg)
        try:  # warm: workers start and load their engines on a short stack first
            streamer.predict(task, None, Sample("warm", open_frames(path)[:64]), VARIANT, None, collect=False)
            start = time.perf_counter()
            streamer.predict(task, None, Sample(path.stem, open_frames(path)), VARIANT, preds, collect=False)
            seconds = time.perf_counter() - start
        finally:
            streamer.close()
        results["dask_two_workers"] = {"fps": args.frames / seconds, "mb_s": args.frames * frame_mb / seconds}
    rss = {}
    for n in [int(x) for x in args.rss.split(",") if x]:
        p = stack(deploy, n, data)
        cmd = [sys.executable, __file__, "--out", str(args.out), "--child-rss", str(p)]
        line = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        rss[n] = json.loads(line)
        r = rss[n]
        print(
            f"{n} frames: RSS after loading {r['loaded_mb']:.0f} MB, "
            f"peak while streaming {r['streaming_peak_mb']:.0f} MB, "
            f"process peak {r['process_peak_mb']:.0f} MB; {r['fps']:.1f} frames/s",
            flush=True,
        )
    results["rss"] = rss
    (args.out / "bench_stream.json").write_text(json.dumps(results, indent=2, default=str))
    print_table(results)


def _median(runs) -> dict:
    runs = list(runs)
    return {k: float(np.median([r[k] for r in runs])) for k in ("fps", "mb_s")}


def print_table(res: dict) -> None:
    t = Table(title=f"Streaming runtime, DilatedLoc {VARIANT}, {describe_machine(res['machine'])}")
    t.add_column("measure")
    t.add_column("value", justify="right")
    t.add_row("engine only, pre-loaded batches (median of rounds)", f"{res['engine_fps_median']:.1f} frames/s")
    t.add_row("end to end, TIFF on disk → CSV (median of rounds)", f"{res['e2e_fps_median']:.1f} frames/s")
    t.add_row("pipeline efficiency: median of paired wall-clock ratios", f"{res['efficiency_median_ratio']:.3f}")
    t.add_row("pipeline efficiency: engine ÷ end-to-end CPU seconds per frame", f"{res['efficiency_cpu']:.3f}")
    for key, label in (
        ("one_worker", "1 worker"),
        ("two_workers", "2 workers"),
        ("dask_two_workers", "Dask LocalCluster, 2 workers"),
    ):
        if key in res:
            t.add_row(f"{label}: frames/s, MB/s raw", f"{res[key]['fps']:.1f}, {res[key]['mb_s']:.3f}")
    for n, r in res.get("rss", {}).items():
        t.add_row(
            f"{int(n):,} frames, one stream: RSS loaded → peak streaming (process peak); frames/s",
            f"{r['loaded_mb']:.0f} → {r['streaming_peak_mb']:.0f} MB ({r['process_peak_mb']:.0f}); {r['fps']:.1f}",
        )
    t.caption = (
        f"{res['frames']} frames of 64×64 uint16 ({res['frame_bytes']} B/frame), chunks of {res['chunk_frames']}; "
        f"engine {res['engine']}; "
        f"load average {res['load_average'][0]:.1f} → {res['load_average'][1]:.1f} (other jobs on the machine)"
    )
    Console(width=150).print(t)


if __name__ == "__main__":
    main()
