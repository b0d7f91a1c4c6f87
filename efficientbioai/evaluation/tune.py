"""``efficientbioai tune``: build many candidate variants, measure them all here, deploy the best.

Candidates come in groups, cheapest first, each one ``compress`` run:

1. ``engines``: every engine and precision this machine runs (OpenVINO fp32/bf16/int8/int8-bf16, ONNX
   Runtime fp32/int8, TensorRT fp16/int8 where TensorRT and a GPU are present);
2. ``keep-float``: int8 with its most sensitive layers kept in float until the primary metric
   is within the budget (the quantizers' accuracy control; tasks with a tile metric only);
3. ``pruned-<ratio>``: channel pruning at each ratio with fine-tuning, then fp32 and int8;
   ``pruned-<f>x`` likewise at the smallest ratio that cuts the FLOPs ``f``-fold. A config that
   enables ``prune`` adds its own ratio (or FLOP target), fine-tuned as it says.

Groups are built into a work folder beside the experiment (``.<name>.tuning``); each finished
group is recorded in its ``tuning.json``, so a rerun resumes after the last finished group. A
group after the first is started only while the time budget lasts (checked between groups). Then every
candidate is timed on this machine, round-robin, and scored on the validation split
(:mod:`efficientbioai.evaluation.selection`); the fastest within the budget is deployed: its
group's experiment is published at ``exp_path`` with ``tuning.json`` and ``tuning.png`` (latency
against the primary metric, the budget line, the chosen point).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import re
import shutil
import time
from pathlib import Path

import torch

from efficientbioai.compression.build_experiment import compress
from efficientbioai.config import PRECISIONS, Config, load_config, split_variant
from efficientbioai.errors import ConfigError, InputError
from efficientbioai.evaluation.accuracy_budget import LOWER_IS_BETTER, budget_terms
from efficientbioai.evaluation.html_report import pareto_png
from efficientbioai.evaluation.selection import Candidate, choose, measure_candidates, set_deployed
from efficientbioai.locking import folder_lock
from efficientbioai.manifest import machine, write_json
from efficientbioai.parsers.base import create_parser
from efficientbioai.registry import TASKS
from efficientbioai.tasks.base import Task

log = logging.getLogger(__name__)

#: Every engine:precision pair that runs on a CPU (TensorRT needs a GPU: :func:`_gpu_variants`).
CPU_VARIANTS = [f"{e}:{p}" for e, precisions in PRECISIONS.items() if e != "tensorrt" for p in precisions]


def parse_duration(text: str) -> float:
    """Seconds in ``"90s"``, ``"30m"``, ``"2h"`` or a plain number of seconds.

    Examples
    --------
    >>> parse_duration("30m"), parse_duration("1.5h"), parse_duration("45")
    (1800.0, 5400.0, 45.0)
    """
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([smh]?)\s*", str(text))
    if not m or float(m.group(1)) <= 0:
        raise InputError(f"--time {text!r}: give a positive duration such as 90s, 30m or 2h")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def _gpu_variants() -> list[str]:
    if importlib.util.find_spec("tensorrt") is None or not torch.cuda.is_available():
        return []
    return ["tensorrt:fp16", "tensorrt:int8"]


def candidate_groups(config: Config, task: Task, ratios: list[float], flops: list[float] = ()) -> dict[str, Config]:
    """The configs to compress, by group name, cheapest first (see the module docstring)."""
    base = config.model_copy(deep=True)
    base.deploy.select = "engine"
    base.prune.enabled = False  # pruning happens in the pruned groups only
    base.report.compare = CPU_VARIANTS + _gpu_variants()
    groups = {"engines": base}
    terms = budget_terms(config, task)
    primary = next((t for t in terms if t.metric == task.primary_metric and not t.relative), None)
    if primary is not None and type(task).tile_metric is not Task.tile_metric:
        keep = base.model_copy(deep=True)
        keep.quantize.openvino.max_accuracy_drop = abs(primary.change)
        keep.quantize.onnxruntime.max_accuracy_drop = min(abs(primary.change), 0.99)
        keep.report.compare = ["torch:fp32", "openvino:int8", "openvino:int8-bf16", "onnxruntime:int8"]
        groups["keep-float"] = keep
    if config.prune.enabled:  # the config's own pruning: its ratio or FLOP target, fine-tuned as it says
        if config.prune.flops_reduction is None:
            ratios = [*ratios, config.prune.ratio]
        else:
            flops = [*flops, config.prune.flops_reduction]
    pruning = {f"pruned-{r:g}": {"ratio": r, "flops_reduction": None} for r in ratios}
    pruning |= {f"pruned-{f:g}x": {"flops_reduction": f} for f in flops}
    for name, update in pruning.items():
        pruned = base.model_copy(deep=True)
        pruned.prune = pruned.prune.model_copy(update={"enabled": True, **update})
        pruned.report.compare = ["torch:fp32", *(f"openvino:{p}:pruned" for p in ("fp32", "int8", "int8-bf16"))]
        pruned.engine.name, pruned.engine.precision = "openvino", "int8"
        groups[name] = pruned
    return groups


def _fingerprint(groups: dict[str, Config]) -> str:
    text = json.dumps({k: c.model_dump(mode="json") for k, c in groups.items()}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def tune(
    config_path: str | Path,
    exp_path: str | Path,
    time_budget_s: float | None = None,
    prune_ratios: tuple[float, ...] = (0.25, 0.5),
    overwrite: bool = False,
    prune_flops: tuple[float, ...] = (),
) -> dict:
    """Build, measure and choose (see the module docstring); returns the ``tuning.json`` record."""
    config = load_config(config_path)
    exp_path = Path(exp_path).resolve()
    if exp_path.exists() and not overwrite:
        raise InputError(f"{exp_path} exists; choose another --exp_path or pass --overwrite")
    parser = create_parser(config)
    task: Task = TASKS.get(parser.task_name)(config, parser)
    groups = candidate_groups(config, task, list(prune_ratios), list(prune_flops))
    work = exp_path.parent / f".{exp_path.name}.tuning"
    with folder_lock(work, "--exp_path"):
        state = _resume(work, _fingerprint(groups))
        start = time.monotonic() - state["seconds"]
        for name, group in groups.items():
            if name in state["built"] or name in state["failed"]:
                continue
            spent = time_budget_s is not None and time.monotonic() - start >= time_budget_s
            if spent and name != "engines":  # the engines group is the least tune builds
                state["skipped"].append(name)
                log.warning("tune: time budget spent; %s not built", name)
                continue
            log.info("tune: building %s", name)
            began = time.monotonic()
            try:
                compress(group, work / name, overwrite=True)
                state["built"][name] = round(time.monotonic() - began, 1)
            except (ConfigError, InputError) as exc:  # e.g. a model that cannot be pruned
                state["failed"][name] = str(exc)
                log.warning("tune: %s could not be built: %s", name, exc)
            state["seconds"] = time.monotonic() - start
            write_json(work / "tuning.json", state)
        record = _measure_and_choose(config, task, work, state)
        _publish(work, exp_path, record)
    return record


def _resume(work: Path, fingerprint: str) -> dict:
    fresh = {"fingerprint": fingerprint, "built": {}, "failed": {}, "skipped": [], "seconds": 0.0}
    path = work / "tuning.json"
    if path.is_file():
        state = json.loads(path.read_text())
        if state.get("fingerprint") == fingerprint:
            log.info("tune: resuming; built already: %s", ", ".join(state["built"]) or "nothing")
            return {**state, "skipped": []}
        log.info("tune: the candidates changed since the last run; starting again")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    return fresh


def _measure_and_choose(config: Config, task: Task, work: Path, state: dict) -> dict:
    candidates: list[Candidate] = []
    group_of: list[str] = []
    for name in state["built"]:
        group = load_config(work / name / "deploy.yaml")
        group_parser = create_parser(group)
        for variant in group.artefacts:
            if variant == "torch:fp32" and candidates:
                continue  # one fp32 reference
            _, precision, pruned = split_variant(variant)
            if (name.startswith("pruned") and not pruned) or (
                name == "keep-float" and not precision.startswith("int8")
            ):
                continue  # the unpruned and fp32 ones are the engines group's
            label = variant if name == "engines" else f"{variant} [{name}]"
            candidates.append(Candidate(label, variant, group, group_parser))
            group_of.append(name)
    if not candidates:
        raise InputError(f"tune built no candidate in time ({state['failed'] or 'no group finished'})")
    rows = measure_candidates(task, candidates, config.report.latency)
    origin = {c.label: (c.variant, name) for c, name in zip(candidates, group_of)}
    for row in rows:
        row["artefact_variant"], row["group"] = origin[row["variant"]]
    terms = budget_terms(config, task)
    choice_config = config.model_copy(deep=True)
    choice_config.deploy.select = "fastest"
    choice_config.prune.enabled = False  # pruned and unpruned candidates compete alike
    record = choose(choice_config, rows, terms)
    record.update(
        machine=machine(),
        groups={"built": state["built"], "failed": state["failed"], "skipped_for_time": state["skipped"]},
        tuning_seconds=round(state["seconds"], 1),
    )
    return record


def _publish(work: Path, exp_path: Path, record: dict) -> None:
    """The chosen candidate's group as the experiment, with ``tuning.json`` and ``tuning.png``."""
    row = next(r for r in record["candidates"] if r["variant"] == record["chosen"])
    staging = exp_path.parent / f".{exp_path.name}.partial"
    if staging.exists():
        shutil.rmtree(staging)
    shutil.copytree(work / row["group"], staging)
    broken = tuple(r["artefact_variant"] for r in record["candidates"] if "error" in r and r["group"] == row["group"])
    set_deployed(staging / "deploy.yaml", row["artefact_variant"], broken)
    record["reason"] = record["reason"].replace(" (configured: ", " (first configured: ")
    write_json(staging / "selection.json", record)
    write_json(staging / "tuning.json", record)
    _pareto(record, staging / "tuning.png")
    if exp_path.exists():
        shutil.rmtree(exp_path)
    staging.rename(exp_path)


def _pareto(record: dict, path: Path) -> Path:
    primary = record["budget"][0].split(" ")[0]
    rows = [r for r in record["candidates"] if "latency" in r]  # not those this machine could not run
    points = [(r["variant"], r["latency"]["median_ms"], r.get("scores", {}).get(primary)) for r in rows]
    term = next((t for r in rows[1:] for t in r.get("budget", {}).get("terms", []) if t["metric"] == primary), None)
    scored = term is not None and primary in rows[0].get("scores", {})
    limit = (term["limit"], f"budget: {term['budget']}") if scored else None
    direction = "lower is better" if primary in LOWER_IS_BETTER else "higher is better"
    title = f"tune: {len(rows)} candidates on this machine; chosen {record['chosen']}"
    return pareto_png(points, f"{primary} on the validation split ({direction})", limit, record["chosen"], title, path)
