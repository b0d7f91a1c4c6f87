"""``efficientbioai export bioimageio``: an experiment as bioimage.io model packages (spec 0.5).

Two packages: the fp32 model (torchscript weights, and the verified fp32 ONNX as a child entry)
and the int8 ONNX (``onnxruntime:int8``), whose model-level ``parent`` names the first. Test
tensors are a tile of the first evaluation image and the fp32 output on it; the int8 package's
reproducibility tolerance is set from the int8 error measured on that tile, within the spec's
limits. Only local files are referenced, so both validate and test offline.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from efficientbioai.api.experiment import Experiment
from efficientbioai.errors import ConfigError, ExportError
from efficientbioai.evaluation.html_report import pyplot
from efficientbioai.evaluation.report import Report
from efficientbioai.io.bioimageio import bioimageio_spec
from efficientbioai.parsers.base import BaseParser, create_parser
from efficientbioai.parsers.bioimageio import BioimageioParser
from efficientbioai.parsers.data_splits import random_crop
from efficientbioai.registry import TASKS

log = logging.getLogger(__name__)

#: Papers behind each family, cited in its packages (DOIs, as bioimage.io requires).
CITATIONS = {
    "efficientbioai": (
        "Zhou et al. (2024) EfficientBioAI: making bioimaging AI models efficient in energy and latency",
        "10.1038/s41592-024-02167-z",
    ),
    "unet": (
        "Ronneberger et al. (2015) U-Net: convolutional networks for biomedical image segmentation",
        "10.1007/978-3-319-24574-4_28",
    ),
    "monai": (
        "Cardoso et al. (2022) MONAI: an open-source framework for deep learning in healthcare",
        "10.48550/arXiv.2211.02701",
    ),
}
FAMILY_CITES = {"monai_unet": ["unet", "monai"]}


def export_bioimageio(
    exp: Experiment | str | Path,
    output_dir: str | Path | None = None,
    variant: str = "onnxruntime:int8",
    author: str = "EfficientBioAI",
    license: str = "BSD-3-Clause",
) -> list[Path]:
    """Write ``<name>_fp32.zip`` and ``<name>_int8.zip`` into ``output_dir`` (default: the experiment)."""
    exp = Experiment.open(exp)
    config = exp.config
    if variant != "onnxruntime:int8":
        raise ConfigError(f"--variant {variant}: bioimage.io holds ONNX weights; export onnxruntime:int8")
    parser = create_parser(config)
    if parser.task_name not in ("denoise", "segment"):
        raise ConfigError(
            f"bioimage.io export covers image-to-image models (denoise, segment); this is a {parser.task_name} model"
        )
    spec = bioimageio_spec()
    out_dir = Path(output_dir or exp.path)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^a-z0-9-]+", "-", exp.path.name.lower()).strip("-") or "model"
    with tempfile.TemporaryDirectory(prefix="bioimageio_", dir=out_dir) as tmp:
        files = _files(exp, config, parser, Path(tmp))
        fp32 = _describe(spec, exp, parser, files, name, author, license, int8=False)
        paths = [_save(spec, fp32, out_dir / f"{name}_fp32.zip")]
        if variant in config.artefacts:
            int8 = _describe(
                spec, exp, parser, files, name, author, license, int8=True, int8_onnx=config.artefact(variant)
            )
            paths.append(_save(spec, int8, out_dir / f"{name}_int8.zip"))
    log.info("bioimage.io packages: %s", ", ".join(map(str, paths)))
    return paths


def _files(exp: Experiment, config, parser: BaseParser, work: Path) -> dict:
    """Torchscript weights, test tensors, README and cover, in ``work``."""
    model = parser.load_model()
    task = TASKS.get(parser.task_name)(config, parser)
    sample = next(iter(task.samples()))
    tile = tuple(config.inference.tile)
    raw = random_crop(np.asarray(sample.image, np.float32), tile, np.random.default_rng(0))[None]
    x = torch.from_numpy(parser.preprocess(raw[0])[None])
    with torch.no_grad():
        expected = model(x).numpy().astype(np.float32)
        scripted = model if isinstance(model, torch.jit.ScriptModule) else torch.jit.trace(model, x)
    scripted.save(str(work / "weights_torchscript.pt"))
    np.save(work / "test_input.npy", raw)
    np.save(work / "test_output.npy", expected)
    _cover(raw[0], expected[0], work / "cover.png")
    report = exp.path / "report.json"
    table = Report(json.loads(report.read_text())).table() if report.is_file() else "(not run yet)"
    (work / "README.md").write_text(
        f"# {exp.path.name}\n\nA {parser.task_name} model compressed by EfficientBioAI (parser "
        f"`{config.model.parser}`), exported with its fp32 and int8 weights.\n\n## Validation\n\n"
        "The test tensors are a tile of the first evaluation image and the fp32 output on it. "
        f"Accuracy and speed of every variant, as `efficientbioai infer` measured them:\n\n```\n{table}\n```\n"
    )
    return {
        "work": work,
        "raw": raw,
        "x": x.numpy(),
        "expected": expected,
        "step": _size_step(model, x),
        "onnx": exp.path / "model.onnx",
    }


def _size_step(model, x: torch.Tensor) -> int:
    """The smallest growth of the tile (a power of 2) the network accepts along every spatial axis."""
    for step in (1, 2, 4, 8, 16, 32, 64):
        bigger = torch.nn.functional.pad(x, [0, step] * (x.ndim - 2), mode="replicate")
        try:
            with torch.no_grad():
                if tuple(model(bigger).shape[2:]) == tuple(bigger.shape[2:]):
                    return step
        except RuntimeError:
            continue
    raise ExportError("the network takes no larger tile up to +64 px; bioimage.io needs a size step")


def _cover(raw: np.ndarray, out: np.ndarray, path: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(4, 2), dpi=96)
    for ax, image, title in zip(axes, (raw, out), ("input", "output")):
        image = image[0] if image.ndim == 3 else image[0, image.shape[1] // 2]
        ax.imshow(image, cmap="gray")
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    fig.savefig(path)
    plt.close(fig)


def _preprocessing(v, parser: BaseParser, config, spatial: list) -> list:
    if isinstance(parser, BioimageioParser):
        return [step for step in parser.input.preprocessing if step.id != "ensure_dtype"]
    if type(parser).preprocess is not BaseParser.preprocess:
        raise ConfigError(f"the {config.model.parser} parser's own preprocessing has no bioimage.io form")
    norm = config.inference.normalize
    if norm.kind == "percentile":
        kwargs = v.ScaleRangeKwargs(axes=spatial, min_percentile=norm.low, max_percentile=norm.high, eps=1e-6)
        return [v.ScaleRangeDescr(kwargs=kwargs)]
    if norm.kind == "zscore":
        return [v.ZeroMeanUnitVarianceDescr(kwargs=v.ZeroMeanUnitVarianceKwargs(axes=spatial, eps=1e-6))]
    return []


def _describe(spec, exp, parser, files, name, author, license, int8: bool, int8_onnx: Path | None = None):
    from bioimageio.spec.model import v0_5 as v

    work, raw, expected, step = files["work"], files["raw"], files["expected"], files["step"]
    ids = [v.AxisId(a) for a in "zyx"[3 - (raw.ndim - 2) :]]
    tile = raw.shape[2:]
    version = v.Version(torch.__version__.split("+")[0])
    if int8:
        int8_out, tolerance = _int8_outputs(int8_onnx, files)
        np.save(work / "test_output_int8.npy", int8_out)
    with spec.ValidationContext(perform_io_checks=True):  # fills in every file's sha256
        inputs = v.InputTensorDescr(
            id=v.TensorId("raw"),
            axes=[v.BatchAxis(), v.ChannelAxis(channel_names=[v.Identifier(f"c{i}") for i in range(raw.shape[1])])]
            + [v.SpaceInputAxis(id=a, size=v.ParameterizedSize(min=t, step=step)) for a, t in zip(ids, tile)],
            test_tensor=v.FileDescr(source=work / "test_input.npy"),
            data=v.IntervalOrRatioDataDescr(type="float32"),
            preprocessing=_preprocessing(v, parser, exp.config, ids),
        )
        outputs = v.OutputTensorDescr(
            id=v.TensorId("prediction"),
            axes=[v.BatchAxis(), v.ChannelAxis(channel_names=[v.Identifier(f"c{i}") for i in range(expected.shape[1])])]
            + [v.SpaceOutputAxis(id=a, size=v.SizeReference(tensor_id=v.TensorId("raw"), axis_id=a)) for a in ids],
            test_tensor=v.FileDescr(source=work / ("test_output_int8.npy" if int8 else "test_output.npy")),
            data=v.IntervalOrRatioDataDescr(type="float32"),
        )
        if int8:
            weights = v.WeightsDescr(
                onnx=v.OnnxWeightsDescr(source=Path(int8_onnx), opset_version=exp.config.export.opset)
            )
            config = v.Config(bioimageio=v.BioimageioConfig(reproducibility_tolerance=[tolerance]))
            extra = {"parent": v.LinkedModel(id=v.ModelId(f"{name}-fp32"), version="0.1.0"), "config": config}
        else:
            weights = v.WeightsDescr(
                torchscript=v.TorchscriptWeightsDescr(source=work / "weights_torchscript.pt", pytorch_version=version),
                onnx=v.OnnxWeightsDescr(
                    source=files["onnx"], opset_version=exp.config.export.opset, parent="torchscript"
                ),
            )
            extra = {}
        cites = ["efficientbioai", *FAMILY_CITES.get(exp.config.model.parser, [])]
        kind = "int8" if int8 else "fp32"
        return v.ModelDescr(
            name=f"{name} {kind}"[:128],
            id=v.ModelId(f"{name}-{kind}"),
            description=f"{parser.task_name} model, {'int8 ONNX (QDQ)' if int8 else 'fp32'}, by EfficientBioAI",
            authors=[v.Author(name=author)],
            cite=[v.CiteEntry(text=CITATIONS[c][0], doi=CITATIONS[c][1]) for c in cites],
            license=license,
            documentation=v.FileDescr(source=work / "README.md"),
            covers=[v.FileDescr(source=work / "cover.png")],
            inputs=[inputs],
            outputs=[outputs],
            weights=weights,
            version="0.1.0",
            **extra,
        )


def _int8_outputs(onnx_path: Path, files: dict):
    """The int8 output on the test tile (the int8 package's test output) and its tolerance.

    The tolerance is the int8 error measured here against fp32 (twice it), within the spec's
    limits (relative 1e-2, absolute 1 % of the output's peak, 5000 elements per million): another
    CPU's int8 kernels round differently, but by less than int8 differs from fp32."""
    import onnxruntime as ort
    from bioimageio.spec.model import v0_5 as v

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: files["x"]})[0].astype(np.float32)
    fp32, rtol = files["expected"], 1e-2
    excess = np.abs(got - fp32) - rtol * np.abs(fp32)
    cap = max(0.0099 * float(got.max()), 0.0)  # just inside the limit, which is checked in float64
    atol = min(cap, 2 * max(float(np.quantile(excess, 1 - 50e-6)), 0.0))
    per_million = min(5000, max(100, int(np.ceil(2e6 * float((excess > atol).mean())))))
    log.info(
        "int8 vs fp32 on the test tile: max |diff| %.3g; tolerance %.3g + %g×|expected|, %d per million",
        float(np.abs(got - fp32).max()),
        atol,
        rtol,
        per_million,
    )
    tolerance = v.ReproducibilityTolerance(
        relative_tolerance=rtol, absolute_tolerance=atol, mismatched_elements_per_million=per_million
    )
    return got, tolerance


def _save(spec, descr, path: Path) -> Path:
    if isinstance(descr, spec.InvalidDescr):
        raise ExportError(f"{path.name}: {descr.validation_summary.format()[:1500]}")
    partial = path.with_name(f".{path.name}.partial.zip")
    spec.save_bioimageio_package(descr, output_path=partial)
    os.replace(partial, path)
    shutil.rmtree(path.with_name(f".{path.name}.partial"), ignore_errors=True)
    return path
