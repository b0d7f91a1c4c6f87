"""``Streamer``: the streaming runtime as ``run_inference`` and ``efficientbioai stream`` use it.

For each input it asks the task for its per-chunk pieces (``Task.stream``), picks the engines —
the configured workers on this machine, or a Dask cluster — and runs the job into a sink that
writes the output file as it goes (or keeps it in memory when the report does not write it).
Tasks without a streamed form (e.g. Cellpose's instance segmentation) are predicted whole.

:func:`stream_input` is the production path: the named input(s), the deployed variant only, each
output written under a temporary name and renamed when complete, no report.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any

import torch

from efficientbioai.config import Config, load_config, split_variant
from efficientbioai.engines.base import BaseInfer
from efficientbioai.engines.factory import create_engine
from efficientbioai.errors import ConfigError
from efficientbioai.integrity import check_artefacts, variant_files
from efficientbioai.io.frames import open_frames
from efficientbioai.io.images import list_images
from efficientbioai.io.inputs import IMAGE_READING, MOVIE_READING, assumed, movie_inputs
from efficientbioai.locking import folder_lock
from efficientbioai.manifest import artefact_files
from efficientbioai.parsers.base import Sample, create_parser
from efficientbioai.registry import TASKS
from efficientbioai.runtime import cluster
from efficientbioai.runtime.local_pipeline import Pipeline
from efficientbioai.runtime.progress import StreamStats
from efficientbioai.runtime.workers import worker_engines
from efficientbioai.tasks.base import Task

log = logging.getLogger(__name__)


@contextlib.contextmanager
def torch_threads(n: int | None):
    """torch's intra-op threads set to ``n`` inside the block (None: unchanged).

    When another engine (OpenVINO, ONNX Runtime) owns the cores, the post-processing torch ops
    run single-threaded so they do not fight the engine's threads for them.
    """
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def artefact_identity(config: Config, variant: str) -> dict:
    """The model part of a resume fingerprint: the variant and the size and time of every file
    its engine reads (an OpenVINO ``.xml`` and its ``.bin``)."""
    path = config.model.checkpoint if variant.startswith("torch:") and not split_variant(variant)[2] else None
    if path is None and variant in config.artefacts:
        path = config.artefact(variant)
    out: dict[str, Any] = {"variant": variant}
    if path is not None and os.path.isfile(path):
        out["artefacts"] = [
            {"path": str(f), "bytes": (st := os.stat(f)).st_size, "mtime_ns": st.st_mtime_ns}
            for f in artefact_files(Path(path))
        ]
    return out


class Streamer:
    """Streams samples of a task through the runtime; one per ``run_inference`` call.

    Attributes
    ----------
    written : dict
        Sample name → output file written by the runtime (for the report's ``outputs``).
    units : float
        Task units (frames, images) processed in this run — less than the input when a resumed
        run skipped finished chunks, so throughput is not overstated.
    stats : list of StreamStats
        One per streamed input.
    """

    def __init__(self, config: Config, resume: bool | None = None) -> None:
        self.config = config
        self.settings = config.runtime.model_copy(
            update={"resume": config.runtime.resume if resume is None else resume}
        )
        self._engines: dict[str, list] = {}
        self._client = None
        self.reset()

    def reset(self) -> None:
        """Start counting a new variant: units run, files written, per-input statistics."""
        self.written: dict[str, Path] = {}
        self.units = 0.0
        self.stats: list[StreamStats] = []

    def predict(
        self,
        task: Any,
        engine: BaseInfer | None,
        sample: Sample,
        variant: str,
        folder: Path | None = None,
        collect: bool = True,
    ) -> Any:
        """``task``'s output for ``sample``, streamed; written to ``folder`` when given."""
        job = task.stream(sample) if self.settings.enabled else None
        if job is None:
            self.units += task.count(sample)
            return task.predict(engine, sample)
        sink = job.sink(folder, collect)
        fingerprint = {**job.fingerprint(), **artefact_identity(self.config, variant)}
        engine_name = split_variant(variant)[0]
        with torch_threads(1 if engine_name != "torch" else None):
            if self.settings.cluster:
                out, stats = self._dask(job, sink, variant, fingerprint)
            else:
                engines = self._local_engines(variant, engine, task.parser)
                pipeline = Pipeline(self.settings, engines, label=f"{variant} {sample.name}")
                out = pipeline.run(job, sink, fingerprint)
                stats = pipeline.stats
        self.stats.append(stats)
        total = sum(job.units(c) for c in job.chunks()) or 1
        self.units += job.total_units() * stats.units / total
        if sink.path is not None:
            self.written[sample.name] = sink.path
        log.info("%s %s: %s", variant, sample.name, stats)
        return out

    def _local_engines(self, variant: str, engine: BaseInfer | None, parser: Any) -> list:
        if variant not in self._engines:
            self._engines = {variant: worker_engines(variant, self.config, parser, self.settings.workers, engine)}
        return self._engines[variant]

    def _dask(self, job: Any, sink: Any, variant: str, fingerprint: dict) -> tuple[Any, StreamStats]:
        if self._client is None:
            self._client = cluster.connect(self.settings)
        threads = cluster.worker_threads(self._client, self.settings, self.config.engine.threads)
        return cluster.run_on_dask(self._client, job, sink, self.settings, variant, threads, fingerprint)

    def release(self) -> None:
        """Drop the worker engines of the last variant (before the next variant loads its own)."""
        self._engines = {}

    def close(self) -> None:
        """Release engines and close the Dask client (and its LocalCluster)."""
        self.release()
        if self._client is not None:
            cluster.close(self._client)
            self._client = None


def stream_input(
    deploy: str | Path,
    source: str | Path,
    output_dir: str | Path | None = None,
    variant: str | None = None,
    resume: bool = False,
    config: Config | None = None,
    trust_modified: bool = False,
) -> list[tuple[Path, StreamStats]]:
    """Stream the input(s) named by ``source`` through the deployed variant into ``output_dir``; no report.

    What one input is follows :mod:`efficientbioai.io.inputs`: for an image model a folder or
    glob is a set of independent images (any sizes), each streamed on its own; for SMLM and
    Deep-STORM a folder of 2D frames is one movie.

    Parameters
    ----------
    deploy : path
        ``deploy.yaml`` written by compress.
    source : path
        A TIFF, ``.npy``, zarr array, a folder or a glob.
    output_dir : path, optional
        Where the outputs go (default ``inference.output_dir`` or ``<experiment>/predictions``).
    variant : str, optional
        Default: the deployed variant.
    resume : bool
        Continue an interrupted run of the same input from its last finished chunk.
    config : Config, optional
        Already loaded (and possibly edited) deploy config; default: read ``deploy``.
    trust_modified : bool
        Run artefacts that differ from ``manifest.json`` (with a warning) instead of refusing.

    Returns
    -------
    list of (Path, StreamStats)
        One output file per input, and what it cost.
    """
    deploy = Path(deploy)
    config = config or load_config(deploy)
    variant = variant or config.deployed_variant
    check_artefacts(deploy.parent, variant_files(config, [variant]), trust_modified)
    parser = create_parser(config)
    task = TASKS.get(parser.task_name)(config, parser)
    if type(task).stream is Task.stream:
        raise ConfigError(f"the {parser.task_name} task has no streamed form; use efficientbioai infer")
    movies = task.unit == "frames"
    paths = movie_inputs(source) if movies else list_images(source)
    folder = Path(output_dir or config.inference.output_dir or deploy.parent.resolve() / "predictions")
    streamer = Streamer(config, resume)
    done = []
    with folder_lock(folder, "--output_dir"):
        try:
            engine = None if streamer.settings.cluster else create_engine(variant, config, parser)
            for path in paths:
                with assumed(MOVIE_READING if movies else IMAGE_READING):
                    sample = Sample(path.stem, open_frames(path))
                    streamer.predict(task, engine, sample, variant, folder, collect=False)
                done.append((streamer.written[sample.name], streamer.stats[-1]))
        finally:
            streamer.close()
    return done
