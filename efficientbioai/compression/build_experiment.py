"""compress: config → fp32 model → ONNX (verified) → int8 / IR artefacts → deploy.yaml + manifest.

Everything is written into a hidden staging folder beside ``exp_path`` and moved into place
only when every step has succeeded, so an interrupted or failed run never leaves a folder that
looks like a finished experiment.
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import time
from collections.abc import Callable
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from efficientbioai.compression.accuracy_control import accuracy_record_path
from efficientbioai.compression.convert import onnx_to_openvino
from efficientbioai.compression.convert_tensorrt import build_tensorrt_variant
from efficientbioai.compression.export import check_test_tensors, export_onnx, verify_onnx
from efficientbioai.compression.prune import prune_and_fine_tune
from efficientbioai.compression.quantizer import Validation
from efficientbioai.compression.subpixel import to_subpixel
from efficientbioai.config import Config, dump_config, load_config, split_variant
from efficientbioai.errors import InputError
from efficientbioai.io.images import list_images
from efficientbioai.locking import folder_lock
from efficientbioai.manifest import (
    artefact_files,
    artefact_size,
    flop_count,
    library_versions,
    machine,
    parameter_count,
    sha256,
    write_json,
)
from efficientbioai.parsers.base import BaseParser, create_parser
from efficientbioai.parsers.pruned_checkpoint import save_pruned
from efficientbioai.registry import QUANTIZERS, TASKS
from efficientbioai.terminal import bar as progress_bar

log = logging.getLogger(__name__)


class _Steps:
    """Records each step's duration for the manifest."""

    def __init__(self) -> None:
        self.done: list[dict] = []

    @contextmanager
    def step(self, name: str, **info):
        log.info("step: %s", name)
        start = time.perf_counter()
        yield info
        self.done.append({"step": name, "seconds": round(time.perf_counter() - start, 2), **info})


def _staging_dir(exp_path: Path) -> Path:
    staging = exp_path.parent / f".{exp_path.name}.partial"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    return staging


def _check_replaceable(exp_path: Path, overwrite: bool, reads: list[Path]) -> None:
    """``--overwrite`` replaces only an experiment (a folder with ``manifest.json``, or an empty
    one), and never one holding a file this run reads (config, checkpoint, data)."""
    if exp_path.is_file():
        raise InputError(f"--exp_path {exp_path} is a file; give a folder to write the experiment into")
    if not exp_path.exists():
        return
    if not overwrite:
        raise InputError(f"{exp_path} exists; choose another --exp_path or pass --overwrite")
    if held := [p for p in reads if p.resolve().is_relative_to(exp_path.resolve())]:
        raise InputError(
            f"--overwrite refused: {exp_path} holds {held[0]}, which this run reads; "
            "move it out of the folder or choose another --exp_path"
        )
    if any(exp_path.iterdir()) and not (exp_path / "manifest.json").is_file():
        raise InputError(
            f"--overwrite refused: {exp_path} is not an experiment (no manifest.json) and is not empty; "
            "--overwrite only replaces a folder compress wrote. Choose a new or empty --exp_path"
        )


def _inputs_read(config_path: Path | None, config: Config) -> list[Path]:
    """Files and folders this compress run reads: none of them may be deleted by --overwrite."""
    splits = (config.data.calibration, config.data.validation, config.data.evaluation)
    paths = [config_path, config.model.checkpoint, config.inference.input, config.inference.target]
    paths += [p for s in splits for p in (s.inputs, s.targets)]
    return [Path(p) for p in paths if p is not None and "*" not in str(p)]


def _publish(staging: Path, exp_path: Path) -> None:
    """Move the finished staging folder to ``exp_path`` (replacing an old one last)."""
    old = exp_path.parent / f".{exp_path.name}.old"
    if exp_path.exists():
        if old.exists():
            shutil.rmtree(old)
        exp_path.rename(old)
    staging.rename(exp_path)
    if old.exists():
        shutil.rmtree(old)


def _build_variant(
    variant: str, config: Config, parser: BaseParser, work: Path, onnx_path: Path, calib: list[np.ndarray]
) -> Path:
    engine, precision, _ = split_variant(variant)
    if engine == "torch":
        return work / "model_fp32.pt"
    if engine == "onnxruntime" and precision == "fp32":
        return onnx_path
    if engine == "openvino" and precision in ("fp32", "bf16"):
        ir = work / "openvino" / "model_fp32.xml"
        return ir if ir.exists() else onnx_to_openvino(onnx_path, work)
    if engine == "openvino" and precision == "int8-bf16":  # the int8 IR, run with another hint
        ir = work / "openvino" / "model_int8.xml"
        return ir if ir.exists() else _build_variant("openvino:int8", config, parser, work, onnx_path, calib)
    quant = config.quantize
    settings = {"onnxruntime": quant.onnxruntime, "openvino": quant.openvino, "tensorrt": quant.onnxruntime}[engine]
    validation = _validation(config, parser) if settings.max_accuracy_drop else None
    if engine == "tensorrt":
        return build_tensorrt_variant(variant, config, parser, work, onnx_path, calib, validation)
    quantizer = QUANTIZERS.get(engine)(settings, parser.keep_float_nodes(), validation)
    artefact = quantizer.apply(onnx_path, calib, work)
    _check_deployed_budget(variant, config, artefact)
    return artefact


def _check_deployed_budget(variant: str, config: Config, artefact: Path) -> None:
    """The deployed variant must be inside the accuracy budget its accuracy control measured."""
    record = accuracy_record_path(artefact)
    if variant != config.deployed_variant or not record.is_file():
        return
    result = json.loads(record.read_text())
    if not result["within_budget"]:
        raise InputError(
            f"the deployed variant {variant} drops the validation metric by {result['drop']:.4f} even with "
            f"{len(result['kept_float'])} layer(s) in float, above its max_accuracy_drop {result['max_drop']:g}; "
            "deploy another variant (engine.name / engine.precision), raise the budget, or calibrate on "
            "data closer to yours (data.calibration)"
        )


def synthetic_calibration_warning(config: Config) -> str | None:
    """A warning when inference runs on the user's files but int8 is calibrated on synthetic data.

    Activation ranges from simulated images need not cover real ones: issue 13 reports the bundled
    2D denoiser's OpenVINO int8 on real widefield images at Pearson 0.875 (fp32 0.877) calibrated
    on five of the user's images, but 0.815 calibrated on the synthetic set.
    """
    if config.inference.input is None or config.data.calibration.source != "synthetic":
        return None
    return (
        f"inference.input points at your files ({config.inference.input}) but int8 is calibrated on "
        "synthetic data (data.calibration.source: synthetic), which can lose much of the accuracy on real "
        "images; set data.calibration: {source: files, inputs: <your raw images>} or pass --calibration DIR"
    )


def _validation(config: Config, parser: BaseParser) -> Validation:
    """Held-out pairs scored with the task's own metric, for accuracy-controlled quantization."""
    task = TASKS.get(parser.task_name)(config, parser)
    return Validation(list(parser.validation_pairs()), task.tile_metric)


def compress(
    config: str | Path | Config,
    exp_path: str | Path,
    overwrite: bool = False,
    calibration: str | Path | None = None,
    make_parser: Callable[[Config], BaseParser] = create_parser,
    finish: Callable[[Path], object] | None = None,
) -> Path:
    """Run the compression pipeline; returns the path of the written ``deploy.yaml``.

    ``config`` is a YAML file or a validated :class:`Config` (copied, never changed);
    ``make_parser`` builds the parser from the final config (default: the one ``model.parser``
    names; the Python API passes one that holds a model object). ``calibration`` (a file, folder or glob of
    the user's raw images) replaces ``data.calibration`` by ``{source: files, inputs:
    calibration}``, keeping ``num_samples``. ``finish`` runs on the finished experiment before
    it is published (the deployment choice), so a failure there leaves nothing behind.
    """
    config_path = None if isinstance(config, Config) else Path(config)
    config = config.model_copy(deep=True) if config_path is None else load_config(config_path)
    exp_path = Path(exp_path).resolve()
    with folder_lock(exp_path, "--exp_path"):
        if calibration is not None:
            list_images(calibration)  # fail now, not after loading and exporting the model
            config.data.calibration = config.data.calibration.model_copy(
                update={"source": "files", "inputs": Path(calibration).resolve()}
            )
        _check_replaceable(exp_path, overwrite, _inputs_read(config_path, config))  # before any work
        if calibration_warning := synthetic_calibration_warning(config):
            log.warning(calibration_warning)
        parser = make_parser(config)
        steps = _Steps()
        with steps.step("load model"):
            model = parser.load_model()
        example = parser.example_input()
        pruned, pruning = None, None
        if config.prune.enabled:
            with steps.step("prune and fine-tune", importance=config.prune.importance, ratio=config.prune.ratio):
                pruned, pruning = prune_and_fine_tune(model, parser, config.prune, example)
        staging = _staging_dir(exp_path)
        try:
            _run(config, parser, model, example, staging, steps, config_path, exp_path, pruned, pruning)
            if finish is not None:
                finish(staging)
            _publish(staging, exp_path)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        log.info("compressed %s into %s", config_path or config.model.target or config.model.parser, exp_path)
        return exp_path / "deploy.yaml"


def _export(
    model, example, path: Path, parser: BaseParser, config: Config, calib: list, info: dict, reference: bool = True
) -> Path:
    model = parser.export_graph(model)
    graph = model
    if config.export.subpixel:
        graph = copy.deepcopy(model)
        info["subpixel_deconvolutions"] = to_subpixel(graph)
    onnx_path = export_onnx(
        graph,
        example,
        path,
        parser.input_names,
        parser.output_names,
        parser.dynamic_axes(),
        config.export.opset,
        config.export.exporter,
    )
    checks = [torch.from_numpy(x) for x in calib[:2]]
    if config.export.dynamic_batch and len(checks) == 2:
        checks.append(torch.cat(checks))
    verified = verify_onnx(model, onnx_path, checks, config.export.verify_tolerance, config.export.verify_safety)
    info.update(verified.record())
    pairs = parser.test_tensors() if reference else []  # the model's own (a bioimage.io package's)
    if pairs:
        info.update(check_test_tensors(onnx_path, pairs, *parser.test_tolerance()))
    return onnx_path


def _run(
    config, parser, model, example, work: Path, steps: _Steps, config_path: Path | None, exp_path: Path, pruned, pruning
) -> None:
    torch.save(model.state_dict(), work / "model_fp32.pt")
    with steps.step("calibration data", source=config.data.calibration.source) as info:
        total = config.data.calibration.num_samples
        calib = list(progress_bar(parser.calibration_inputs(), desc="calibration inputs", leave=False, total=total))
        info["num_samples"] = len(calib)
    if not calib:
        raise InputError("no calibration inputs: check data.calibration")
    with steps.step("export onnx", opset=config.export.opset, exporter=config.export.exporter) as info:
        onnx_path = _export(model, example, work / "model.onnx", parser, config, calib, info)
    artefacts: dict[str, Path] = {}
    for variant in config.variants():
        if split_variant(variant)[2]:
            continue  # pruned variants: built below from the pruned model
        with steps.step(f"build {variant}"):
            artefacts[variant] = _build_variant(variant, config, parser, work, onnx_path, calib)
    if pruned is not None:
        pruned_dir = work / "pruned"
        pruned_dir.mkdir()
        save_pruned(pruned, pruned_dir / "model_fp32.pt")
        with steps.step("export pruned onnx") as info:
            pruned_onnx = _export(pruned, example, pruned_dir / "model.onnx", parser, config, calib, info, False)
        for variant in config.variants():
            if split_variant(variant)[2]:
                with steps.step(f"build {variant}"):
                    artefacts[variant] = _build_variant(variant, config, parser, pruned_dir, pruned_onnx, calib)
    deploy = config.model_copy(deep=True)
    deploy.model.checkpoint = Path("model_fp32.pt")
    deploy.artefacts = {v: str(p.relative_to(work)) for v, p in artefacts.items()}
    (work / "deploy.yaml").write_text(
        "# Written by efficientbioai compress; run it with\n"
        f"#   python efficientbioai/inference.py --config {exp_path / 'deploy.yaml'}\n" + dump_config(deploy)
    )
    files = {str(f.relative_to(work)): sha256(f) for p in set(artefacts.values()) for f in artefact_files(p)}
    manifest = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": str(config_path.resolve()) if config_path else "<python>",
        "parser": config.model.parser,
        "steps": steps.done,
        "variants": {
            v: {
                "artefact": str(p.relative_to(work)),
                "bytes": artefact_size(p),
                "parameters": parameter_count(pruned if split_variant(v)[2] else model),
            }
            for v, p in artefacts.items()
        },
        "model": {
            "parameters": parameter_count(model),
            "flops_per_tile": flop_count(model, example),
            "tile": list(example.shape),
        },
        "pruning": pruning,
        "calibration": {
            "source": config.data.calibration.source,
            "inputs": str(config.data.calibration.inputs) if config.data.calibration.inputs else None,
            "warning": synthetic_calibration_warning(config),
            "num_samples": len(calib),
            "onnxruntime": config.quantize.onnxruntime.model_dump(),
            "openvino": config.quantize.openvino.model_dump(),
            "keep_float": parser.keep_float_nodes(),
        },
        "sha256": files,
        "versions": library_versions(),
        "machine": machine(),
    }
    write_json(work / "manifest.json", manifest)  # written last: its presence marks completion
