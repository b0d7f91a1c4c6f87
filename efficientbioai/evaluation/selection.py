"""Choose the variant to deploy: the fastest on this machine within the accuracy budget.

Which variant is fastest depends on the CPU: on an AMX Xeon OpenVINO int8 runs U-Nets about ten
times faster than fp32, on a Skylake-SP without VNNI 1.25×, and on an AVX2-only EPYC int8
convolutions run at exactly the fp32 rate, so int8 there only adds quantize/dequantize work.
``compress`` therefore times every built variant here, interleaved (round-robin, warm-up then
median), scores each on the validation split (``Task.validation_samples``: never calibration,
fine-tuning or report data) against its ground truth, and deploys the fastest variant inside the
budget (:mod:`efficientbioai.evaluation.accuracy_budget`). ``openvino:fp32`` is always among the
candidates, so the deployed variant is never slower than it. ``selection.json`` records every
measurement and the reason; the report repeats the reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from efficientbioai.budget import check_budget
from efficientbioai.config import Config, LatencySection, load_config, split_variant
from efficientbioai.engines.factory import create_engine
from efficientbioai.errors import ConfigError, InputError, last_line
from efficientbioai.evaluation.accuracy_budget import budget_terms, describe_budget
from efficientbioai.evaluation.measure import mean_scores, round_robin_latency
from efficientbioai.evaluation.report import REFERENCE
from efficientbioai.manifest import machine, write_atomic, write_json
from efficientbioai.parsers.base import BaseParser, Sample, create_parser
from efficientbioai.registry import TASKS
from efficientbioai.tasks.base import Task

log = logging.getLogger(__name__)

FLOOR = "openvino:fp32"


@dataclass(frozen=True)
class Candidate:
    """One variant to measure: its ``label`` in tables, ``variant`` (``engine:precision[:pruned]``)
    and the deploy config (with its parser) that holds its artefact."""

    label: str
    variant: str
    config: Config
    parser: BaseParser


def select_deployment(exp: Path) -> dict:
    """Measure the experiment's variants in ``exp``, set ``deploy.yaml``'s engine to the chosen
    one (with ``deploy.select: fastest``), write ``selection.json`` and return it."""
    config = load_config(exp / "deploy.yaml")
    parser = create_parser(config)
    task: Task = TASKS.get(parser.task_name)(config, parser)
    pruned = config.prune.enabled
    variants = [REFERENCE] + [v for v in config.artefacts if split_variant(v)[2] == pruned and v != REFERENCE]
    rows = measure_candidates(task, [Candidate(v, v, config, parser) for v in variants], config.deploy.latency)
    record = choose(config, rows, budget_terms(config, task))
    record["machine"] = machine()
    if record["chosen"] != config.deployed_variant:
        set_deployed(exp / "deploy.yaml", record["chosen"])
    write_json(exp / "selection.json", record)
    log.info("deployment: %s", record["reason"])
    return record


def measure_candidates(task: Task, candidates: list[Candidate], protocol: LatencySection) -> list[dict]:
    """One row per candidate (the first is the fp32 reference): ``variant`` (its label),
    ``precision``, ``latency`` (round-robin) and ``scores`` on the validation split, against its
    ground truth, else against the fp32 output (``scored_against`` says which). A candidate this
    machine cannot run gets a row with its ``error`` instead, after the measured ones."""
    try:
        samples = list(task.validation_samples())
    except (ConfigError, InputError) as exc:  # no validation data: only fp32 variants are safe
        samples, missing = [], str(exc)
    example = _example(task, task.config, samples)
    engines, broken = _start_engines(candidates, example)
    try:
        latency = round_robin_latency(engines, example, protocol.warmup, protocol.runs)
        rows, rows_broken = [], []
        for c in candidates:
            row = {"variant": c.label, "precision": split_variant(c.variant)[1]}
            if c.label in engines:
                rows.append({**row, "latency": latency[c.label].as_dict()})
            elif c.label in broken:
                rows_broken.append({**row, "error": broken[c.label]})
        if not samples:
            for row in rows:
                row["scored_against"] = f"nothing: no validation data ({missing})"
            return rows + rows_broken
        reference = [task.predict(engines[candidates[0].label], sample) for sample in samples]
        truth = all(sample.target is not None for sample in samples)
        for i, row in enumerate(rows):
            engine = engines[row["variant"]]
            outputs = reference if i == 0 else [task.predict(engine, x) for x in samples]
            targets = [x.target for x in samples] if truth else reference
            row["scores"] = mean_scores([task.score(o, t) for o, t in zip(outputs, targets)])
            row["scored_against"] = "ground truth" if truth else "the torch fp32 output (no validation targets)"
        return rows + rows_broken
    finally:
        for engine in engines.values():
            engine.release()


def _start_engines(candidates: list[Candidate], example: np.ndarray) -> tuple[dict, dict[str, str]]:
    """Each candidate's engine, tried once on ``example``; those this machine cannot run (a
    precision whose kernels it lacks, e.g. OpenVINO bf16 under an AVX2 cap) by label → error.
    The fp32 reference must run."""
    engines, broken = {}, {}
    for i, c in enumerate(candidates):
        try:
            engine = create_engine(c.variant, c.config, c.parser)
            engine(example)
        except Exception as exc:  # noqa: BLE001 - recorded in selection.json and the reason
            if i == 0:
                raise
            broken[c.label] = last_line(exc)
            log.warning("deployment: %s cannot run on this machine: %s", c.label, broken[c.label])
            continue
        engines[c.label] = engine
    return engines, broken


def _example(task: Task, config: Config, samples: list[Sample]) -> np.ndarray:
    batch = config.report.latency.batch_size or config.inference.batch_size
    if samples:
        return task.example_batch(samples[0], batch)
    return np.repeat(task.parser.example_input().numpy(), batch, axis=0)


def choose(config: Config, rows: list[dict], terms) -> dict:
    """The deployment decision for measured ``rows`` (see the module docstring)."""
    broken = {r["variant"]: r["error"] for r in rows if "error" in r}
    everything, rows = rows, [r for r in rows if "error" not in r]
    configured = config.deployed_variant
    if config.deploy.select == "engine" and configured in broken:
        raise InputError(
            f"the configured engine {configured} cannot run on this machine ({broken[configured]}); "
            "set another engine.name/precision or deploy.select: fastest"
        )
    by_name = {r["variant"]: r for r in rows}
    fp32 = rows[0].get("scores")  # the first row is the fp32 reference
    for row in rows[1:]:
        if fp32 is not None:
            row["budget"] = check_budget(terms, fp32, row["scores"])
    scored = fp32 is not None
    # Without validation data only fp32 variants are known to keep the accuracy (and the configured one).
    eligible = [
        r
        for r in rows
        if (r.get("budget", {}).get("within", True) if scored else r.get("precision", "fp32") == "fp32")
        or (not scored and r["variant"] == configured)
    ]
    if config.prune.enabled:  # the unpruned fp32 reference is not a deployment of a pruned experiment
        eligible = [r for r in eligible if r["variant"].endswith(":pruned")]
    fastest = min(eligible, key=lambda r: r["latency"]["median_ms"])["variant"] if eligible else None
    chosen = fastest if config.deploy.select == "fastest" and fastest else configured
    reason = _reason(config, by_name, chosen, terms, scored, configured, fastest is not None)
    if broken:
        reason += f" Could not run here: {', '.join(f'{v} ({e})' for v, e in broken.items())}."
    outside = [r["variant"] for r in rows if not r.get("budget", {}).get("within", True)]
    if chosen in outside or fastest is None or _slower_than_floor(by_name, chosen):
        log.warning("deployment: %s", reason)
    return {
        "select": config.deploy.select,
        "budget": [str(t) for t in terms],
        "chosen": chosen,
        "configured": configured,
        "reason": reason,
        "outside_budget": outside,
        "protocol": {**config.deploy.latency.model_dump(), "order": "round-robin", "statistic": "median"},
        "candidates": everything,
    }


def _slower_than_floor(rows: dict, variant: str) -> bool:
    floor = _floor(rows)
    return floor is not None and rows[variant]["latency"]["median_ms"] > floor["latency"]["median_ms"]


def _floor(rows: dict) -> dict | None:
    """The openvino:fp32 row (pruned when the candidates are)."""
    return rows.get(FLOOR) or rows.get(f"{FLOOR}:pruned")


def _reason(config: Config, rows: dict, chosen: str, terms, scored: bool, configured: str, any_within: bool) -> str:
    ms = rows[chosen]["latency"]["median_ms"]
    floor = _floor(rows)
    vs = f"; {floor['variant']} {floor['latency']['median_ms']:.1f} ms" if floor and floor["variant"] != chosen else ""
    outside = [f"{v} ({_worst(r)})" for v, r in rows.items() if not r.get("budget", {}).get("within", True)]
    out = f"; outside the budget: {', '.join(outside)}" if outside else ""
    where = "on the validation split" if scored else "(not scored: no validation data, so only fp32 variants)"
    if config.deploy.select == "engine":
        slower = " It is slower than openvino:fp32 here." if _slower_than_floor(rows, chosen) else ""
        over = " It is outside the accuracy budget." if chosen in [o.split(" ")[0] for o in outside] else ""
        return f"{chosen} as configured (deploy.select: engine), {ms:.1f} ms per batch{vs}.{slower}{over}"
    if not any_within:
        return (
            f"no candidate is within the budget ({describe_budget(terms)}) on the validation split, so the "
            f"configured {configured} is deployed, outside it; lower prune.ratio or prune.flops_reduction, "
            f"fine-tune longer, raise deploy.budget or deploy another engine. {chosen}: {ms:.1f} ms per batch{vs}{out}."
        )
    changed = f" (configured: {configured})" if chosen != configured else ""
    return (
        f"{chosen}{changed} is the fastest variant on this machine within the budget "
        f"({describe_budget(terms)}) {where}: {ms:.1f} ms per batch{vs}{out}."
    )


def _worst(row: dict) -> str:
    bad = [t for t in row["budget"]["terms"] if not t["within"]]
    return ", ".join(f"{t['metric']} {t['value']:.4g} vs fp32 {t['fp32']:.4g}" for t in bad)


def set_deployed(deploy_yaml: Path, variant: str, unusable: tuple[str, ...] = ()) -> None:
    """Rewrite ``deploy.yaml``'s ``engine.name``/``precision`` to ``variant`` (atomically),
    keeping its header comment; ``unusable`` variants (this machine cannot run them) leave
    ``report.compare``."""
    text = deploy_yaml.read_text()
    header = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
    data = yaml.safe_load(text)
    name, precision, _ = split_variant(variant)
    data["engine"]["name"], data["engine"]["precision"] = name, precision
    data["report"]["compare"] = [v for v in data["report"]["compare"] if v not in unusable]
    write_atomic(deploy_yaml, header + yaml.safe_dump(data, sort_keys=False))
