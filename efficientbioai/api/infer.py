"""inference: deploy.yaml → engines → task outputs, metrics, latency, energy → report.

Every variant runs the same samples. ``torch:fp32`` (when listed) runs first and its outputs
are the reference each compressed variant is scored against, besides the ground truth.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from efficientbioai.api.experiment import Experiment, Images, images_as_files
from efficientbioai.api.stream import Streamer
from efficientbioai.config import load_config
from efficientbioai.engines.factory import create_engine
from efficientbioai.errors import ArtefactError, BackendUnavailableError, InputError, last_line
from efficientbioai.evaluation.accuracy_budget import budget_terms, describe_budget, mark_budget
from efficientbioai.evaluation.html_report import write_html_report
from efficientbioai.evaluation.measure import EnergyMeter, mean_scores, measure_latency
from efficientbioai.evaluation.report import REFERENCE, Report, write_report
from efficientbioai.evaluation.roofline import cached_ceilings
from efficientbioai.integrity import check_artefacts, variant_files
from efficientbioai.locking import folder_lock
from efficientbioai.manifest import artefact_size, library_versions, machine
from efficientbioai.parsers.base import create_parser
from efficientbioai.registry import TASKS
from efficientbioai.tasks.base import Task
from efficientbioai.terminal import bar as progress_bar

log = logging.getLogger(__name__)


def run_inference(
    deploy_path: str | Path,
    variants: list[str] | None = None,
    output_dir: str | Path | None = None,
    resume: bool | None = None,
    trust_modified: bool = False,
    inputs: str | Path | None = None,
) -> dict:
    """Run every variant of a compressed experiment; write outputs and ``report.json``/``.md``.

    ``inputs`` (a file, folder or glob) replaces ``inference.input`` for this run.

    Every artefact of every variant is checked against ``manifest.json`` before any runs
    (:mod:`efficientbioai.integrity`; ``trust_modified`` turns a mismatch into a warning).

    Inputs stream through :mod:`efficientbioai.runtime` (``runtime`` config section); outputs a
    variant writes are written as it runs, and ``resume`` (default ``runtime.resume``) continues
    them from their last finished chunk.
    """
    deploy_path = Path(deploy_path)
    config = load_config(deploy_path)
    if inputs is not None:  # the caller's images instead of the configured ones (no ground truth)
        config.inference.input, config.inference.target = Path(inputs).resolve(), None
    exp = deploy_path.parent.resolve()
    if not config.artefacts or not (exp / "manifest.json").is_file():
        raise ArtefactError(
            f"{deploy_path} is not a finished compress.py output (no artefacts or manifest.json); "
            "run compress.py first and pass the deploy.yaml it writes"
        )
    parser = create_parser(config)
    task: Task = TASKS.get(parser.task_name)(config, parser)
    out_dir = Path(output_dir or config.inference.output_dir or exp / "predictions")
    # The fp32 reference always runs first, so every variant is scored against its outputs.
    required = set(variants or ()) | {REFERENCE, config.deployed_variant}
    variants = [REFERENCE] + [v for v in (variants or config.variants()) if v != REFERENCE]
    check_artefacts(exp, variant_files(config, variants), trust_modified)
    manifest = json.loads((exp / "manifest.json").read_text())
    with folder_lock(out_dir, "--output_dir"):
        samples = list(task.samples())
        if not samples:
            raise InputError("no images to run: set inference.input or data.evaluation")
        began = time.perf_counter()
        task.warm_up()  # one-time start-up (e.g. cellpose's numba JIT), charged to no variant
        startup_s = time.perf_counter() - began
        lat_cfg, energy_cfg = config.report.latency, config.report.energy
        example = task.example_batch(samples[0], lat_cfg.batch_size or config.inference.batch_size)
        reference_outputs: list[np.ndarray] | None = None
        rows, previews, skipped = [], {}, {}
        streamer = Streamer(config, resume)
        try:
            for variant in variants:
                log.info("running %s", variant)
                try:
                    engine = create_engine(variant, config, parser)
                    latency = measure_latency(engine, example, lat_cfg.warmup, lat_cfg.runs)
                except (ArtefactError, InputError):
                    raise
                except Exception as exc:  # noqa: BLE001 - a variant this machine cannot run
                    if variant in required:
                        fix = (
                            "run compress on this machine to deploy one that runs here"
                            if variant == config.deployed_variant
                            else "leave it out of --variants"
                        )
                        raise BackendUnavailableError(
                            f"{variant} cannot run on this machine ({last_line(exc)}); {fix}"
                        ) from exc
                    skipped[variant] = last_line(exc)
                    log.warning("%s cannot run on this machine, left out of the report: %s", variant, skipped[variant])
                    continue
                write = config.report.write_outputs
                folder = None
                if write == "all" or (write == "deploy" and variant == config.deployed_variant):
                    folder = out_dir if write == "deploy" else out_dir / variant.replace(":", "_")
                outputs = []
                if not previews:
                    previews["input"] = task.preview_input(samples[0])
                streamer.reset()
                with EnergyMeter(energy_cfg.country_iso_code, energy_cfg.enabled) as meter:
                    start = time.perf_counter()
                    for sample in progress_bar(samples, desc=variant, leave=False):
                        outputs.append(streamer.predict(task, engine, sample, variant, folder))
                    seconds = time.perf_counter() - start
                units = streamer.units  # resumed runs count only the chunks run now
                row = {
                    "variant": variant,
                    "engine": engine.describe(),
                    "latency": latency.as_dict(),
                    "units": units,
                    "seconds": seconds,
                    "units_per_s": units / seconds,
                    "energy_kwh": meter.kwh,
                    "energy_j_per_unit": meter.joules_per(units),
                    "energy_method": meter.method,
                    "artefact_bytes": artefact_size(config.artefact(variant)),
                    "parameters": manifest.get("variants", {}).get(variant, {}).get("parameters"),
                }
                previews[variant] = task.preview(outputs[0], samples[0])
                with_gt = [(o, s.target) for o, s in zip(outputs, samples) if s.target is not None]
                if with_gt:
                    row["vs_ground_truth"] = mean_scores([task.score(o, t) for o, t in with_gt])
                if variant == REFERENCE:
                    reference_outputs = outputs
                if reference_outputs is not None:
                    row["vs_fp32"] = mean_scores([task.score(o, r) for o, r in zip(outputs, reference_outputs)])
                if streamer.stats:
                    row["stream"] = _stream_summary(streamer)
                if folder is not None:  # streamed outputs are written already; the rest now
                    row["outputs"] = [
                        str(streamer.written.get(s.name) or task.write(o, folder, s.name))
                        for o, s in zip(outputs, samples)
                    ]
                if variant == config.deployed_variant:
                    row["extras"] = task.extras(outputs, samples, out_dir)
                rows.append(row)
                streamer.release()
                del engine
        finally:
            streamer.close()
        budget = budget_terms(config, task)
        outside = mark_budget(rows, budget, REFERENCE)
        if config.deployed_variant in outside:
            log.warning(
                "the deployed variant %s is outside the accuracy budget (%s) on the evaluation data",
                config.deployed_variant,
                describe_budget(budget),
            )
        report = {
            "experiment": str(exp),
            "task": parser.task_name,
            "primary_metric": task.primary_metric,
            "report_metrics": list(task.report_metrics or (task.primary_metric,)),
            "unit": task.unit,
            "reference": REFERENCE,
            "deployed": config.deployed_variant,
            "model": manifest.get("model", {}),
            "machine": machine(),
            "versions": library_versions(),
            "variants": rows,
            "pruning": manifest.get("pruning"),
            "accuracy_budget": {"terms": [str(t) for t in budget], "outside": outside},
            "selection": _selection(exp),
            "roofline": cached_ceilings(),
            "startup_s": round(startup_s, 2),
            "skipped": skipped,
        }
        write_report(report, exp)
        write_html_report(report, exp, previews, task.preview_kind)
        return report


def _stream_summary(streamer: Streamer) -> dict:
    """Raw-data throughput and peak memory of the streamed inputs of one variant."""
    stats = streamer.stats
    seconds = sum(s.seconds for s in stats)
    return {
        "raw_mb_per_s": sum(s.raw_bytes for s in stats) / 1e6 / seconds if seconds else None,
        "chunks": sum(s.chunks for s in stats),
        "resumed_chunks": sum(s.resumed_chunks for s in stats),
        "peak_rss_mb": max(s.peak_rss_mb for s in stats),
        "workers": len(streamer.settings.workers),
        "cluster": streamer.settings.cluster,
    }


def _selection(exp: Path) -> dict | None:
    """Why compress deployed what it did (``selection.json``), if it chose."""
    path = exp / "selection.json"
    return json.loads(path.read_text()) if path.is_file() else None


def infer(
    exp: str | Path | Experiment,
    images: Images | None = None,
    *,
    variants: list[str] | None = None,
    output_dir: str | Path | None = None,
    trust_modified: bool = False,
) -> Report:
    """Run the experiment's variants on ``images`` (default: its configured inputs); the report.

    ``images`` is a file, folder or glob, a numpy array or a list of arrays (each one image,
    or one movie for SMLM). Predictions go to ``output_dir`` (default ``<exp>/predictions``);
    :meth:`Report.outputs` lists them.

    Examples
    --------
    >>> report = infer("out/den2d", images=[noisy])      # doctest: +SKIP
    >>> print(report.table())                            # doctest: +SKIP
    """
    exp = Experiment.open(exp)
    with images_as_files(images, "images") as inputs:
        report = run_inference(exp.deploy_yaml, variants, output_dir, None, trust_modified, inputs)
    return Report(report)
