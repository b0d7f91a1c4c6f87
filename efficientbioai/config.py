"""The YAML config: a validated schema, its defaults, and errors that name the key and the file.

A config has the sections ``model``, ``data``, ``prune``, ``quantize``, ``export``, ``engine``,
``inference``, ``report`` and ``deploy``. ``compress.py`` adds ``artefacts`` (what it built, relative to
the experiment folder) when it writes ``deploy.yaml``. Relative paths resolve against the
folder of the YAML file they appear in.

Examples
--------
>>> cfg = Config.model_validate({"model": {"parser": "monai_unet"}})
>>> cfg.engine.name, cfg.engine.precision
('openvino', 'int8')
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import Field, ValidationError, create_model, field_validator, model_validator

from efficientbioai.budget import parse_budget
from efficientbioai.errors import ConfigError
from efficientbioai.registry import SECTION_INFO, SECTIONS, load_plugins
from efficientbioai.section import Section

PathLike = str | Path

#: Engine/precision pairs a variant may name, as ``engine:precision``.
PRECISIONS = {
    "torch": ("fp32",),
    "onnxruntime": ("fp32", "int8"),
    "openvino": ("fp32", "bf16", "int8", "int8-bf16"),  # int8-bf16: the int8 IR, its float layers in bf16
    "tensorrt": ("fp16", "int8"),
}


class ModelSection(Section):
    """The network: a parser (a family, or your ``BaseParser``), or any ``nn.Module`` by ``target``."""

    parser: str = Field(
        "module", description="registry name (e.g. monai_unet) or 'package.module:ClassName'; 'module' with target"
    )
    target: str | None = Field(None, description="'package.module:ClassName' of an nn.Module (parser 'module')")
    bioimageio: Path | None = Field(None, description="a bioimage.io model package (.zip) or its rdf.yaml")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="constructor arguments of target")
    checkpoint: Path | None = Field(None, description="state_dict file (.pt/.pth), loaded weights_only")
    params: dict[str, Any] = Field(default_factory=dict, description="passed to the parser")

    @model_validator(mode="before")
    @classmethod
    def _bioimageio_parser(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("bioimageio") is not None and "parser" not in data:
            return {**data, "parser": "bioimageio"}
        return data

    @model_validator(mode="after")
    def _target_or_parser(self) -> ModelSection:
        if self.bioimageio is not None and self.parser != "bioimageio":
            raise ValueError(f"bioimageio is read by parser 'bioimageio', not {self.parser!r}")
        if self.target is not None and self.parser != "module":
            raise ValueError(f"target is for parser 'module' (any nn.Module); parser {self.parser!r} builds its own")
        if self.target is None and self.parser == "module":
            raise ValueError(
                "give parser (a family, or your BaseParser) or target (any nn.Module, 'package.module:Class')"
            )
        if self.target is not None and ":" not in self.target:
            raise ValueError(f"target {self.target!r} must look like 'package.module:ClassName'")
        return self


class SplitSection(Section):
    """Where one split (calibration or evaluation) comes from."""

    source: Literal["synthetic", "files"] = "synthetic"
    inputs: Path | None = Field(None, description="file, folder or glob of TIFF/.npy images")
    targets: Path | None = Field(None, description="ground truth matching `inputs` by sorted order")
    num_samples: int = Field(4, ge=1, le=100_000)
    shape: list[int] | None = Field(None, description="spatial shape of synthetic images")

    @model_validator(mode="after")
    def _files_need_inputs(self) -> SplitSection:
        if self.source == "files" and self.inputs is None:
            raise ValueError("source 'files' needs 'inputs' (a file, folder or glob)")
        return self


class DataSection(Section):
    calibration: SplitSection = Field(default_factory=lambda: SplitSection(num_samples=8))
    validation: SplitSection = Field(
        default_factory=lambda: SplitSection(num_samples=6),
        description="held-out pairs for accuracy-controlled quantization (never the evaluation set)",
    )
    evaluation: SplitSection = Field(default_factory=SplitSection)


class FineTuneSection(Section):
    """Short training after pruning: the parser's own recipe, else supervised or distillation."""

    mode: Literal["auto", "supervised", "distill", "none"] = Field(
        "auto", description="auto: the parser's fine_tune, else supervised on its training pairs, else distill"
    )
    steps: int = Field(300, ge=0)
    lr: float = Field(1e-3, gt=0)
    batch_size: int = Field(4, ge=1)
    tile: list[int] | None = Field(None, description="training crop size; default inference.tile")
    eval_every: int = Field(50, ge=1, description="steps between points of the metric curve")
    distill_outputs: float = Field(
        1.0, ge=0, description="weight of the fp32 model's output maps in the loss (variance-scaled MSE); 0: off"
    )
    distill_features: float = Field(
        1.0, ge=0, description="weight of its intermediate features (1×1 adapters where channels differ); 0: off"
    )


class PruneSection(Section):
    """Structured (channel) pruning before int8: ``prune → fine-tune → quantize`` in one run."""

    enabled: bool = False
    library: str = Field("torch_pruning", description="torch_pruning, nni, or 'package.module:Class'")
    importance: Literal["l1", "l2", "fpgm", "taylor"] = "l1"
    ratio: float = Field(0.5, ge=0.0, lt=0.95, description="fraction of channels removed per layer (uniform)")
    flops_reduction: float | None = Field(
        None,
        gt=1,
        le=100,
        description="instead of ratio: the smallest ratio (0.05 steps) whose FLOPs per tile "
        "are this many times fewer, e.g. 2.0",
    )
    scope: Literal["uniform", "global"] = Field("uniform", description="global ranks channels across layers")
    iterative_steps: int = Field(1, ge=1, le=50, description="prune in this many steps (ratio reached at the end)")
    round_to: int | None = Field(None, ge=1, description="keep channel counts multiples of this (e.g. 8)")
    protect: list[str] | None = Field(
        None, description="module names (fnmatch) never pruned; null = the parser's input layer and output heads"
    )
    fine_tune: FineTuneSection = Field(default_factory=FineTuneSection)


class OnnxRuntimeQuantSection(Section):
    method: Literal["minmax", "percentile", "entropy"] = "percentile"
    percentile: float = Field(99.999, gt=50.0, le=100.0)
    per_channel: bool = True
    activation_type: Literal["uint8", "int8"] = "uint8"
    weight_type: Literal["int8", "uint8"] = "int8"
    symmetric_activations: bool = False
    reduce_range: bool | Literal["auto"] = Field(
        "auto",
        description="7-bit weights: ONNX Runtime's x86 int8 kernels without VNNI (AVX2, AVX-512F) add pairs "
        "of u8 x s8 products in int16, which saturates with 8-bit weights; auto: on for an x86 CPU without VNNI",
    )
    entropy_bins: int = Field(512, ge=256, description="histogram bins for entropy; more than the 128 quantized bins")
    max_accuracy_drop: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="if set, the most sensitive layers are kept in float until the task metric on "
        "data.validation drops by at most this much (absolute); also used for the TensorRT QDQ model",
    )


class OpenVINOQuantSection(Section):
    preset: Literal["performance", "mixed"] = Field(
        "mixed", description="mixed: asymmetric activations (robust for image inputs); performance: symmetric"
    )
    fast_bias_correction: bool = True
    range_estimator: Literal["minmax", "mean_minmax", "mean_quantile", "histogram"] = Field(
        "mean_quantile", description="how NNCF sets activation ranges; quantiles ignore rare outliers"
    )
    max_accuracy_drop: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="if set, NNCF reverts the most sensitive layers to float until the task metric on "
        "data.validation drops by at most this much (absolute)",
    )


class QuantizeSection(Section):
    keep_float: list[str] | None = Field(
        None,
        description="node names or fnmatch patterns kept in float; unset: the parser's default "
        "(its output layers), []: quantize everything",
    )
    onnxruntime: OnnxRuntimeQuantSection = Field(default_factory=OnnxRuntimeQuantSection)
    openvino: OpenVINOQuantSection = Field(default_factory=OpenVINOQuantSection)


class ExportSection(Section):
    opset: int = Field(17, ge=17, le=23)
    exporter: Literal["torchscript", "dynamo"] = "torchscript"
    dynamic_batch: bool = True
    dynamic_spatial: bool = True
    verify_tolerance: float | None = Field(
        None,
        gt=0,
        le=1e-1,
        description="largest ONNX-vs-torch difference relative to the output's peak; "
        "unset: verify_safety × the model's own float32 rounding (torch float32 vs float64)",
    )
    verify_safety: float = Field(10.0, ge=1, le=1e6, description="multiple of the float32 rounding accepted")
    subpixel: bool = Field(
        True,
        description="export transposed convolutions whose kernel exceeds their stride as a convolution and a "
        "depth-to-space shuffle (exact; OpenVINO runs those in float32 otherwise)",
    )


class TensorRTSection(Section):
    """TensorRT engine build (``tensorrt:*`` variants) and ONNX Runtime's TensorRT provider.

    Unset shapes come from the deployment: ``opt_batch`` = ``inference.batch_size``, tiles =
    ``inference.tile``, ``max_batch`` large enough for ``report.latency.batch_size``
    (see ``compression.convert_tensorrt.profile_from_config``).
    """

    device: int = Field(0, ge=0, description="CUDA device index")
    min_batch: int = Field(1, ge=1)
    opt_batch: int | None = Field(None, ge=1, description="default: inference.batch_size")
    max_batch: int | None = Field(None, ge=1, description="default: max(opt_batch, report.latency.batch_size)")
    min_tile: list[int] | None = Field(None, description="smallest spatial tile; default: inference.tile")
    opt_tile: list[int] | None = Field(None, description="tile TensorRT tunes for; default: inference.tile")
    max_tile: list[int] | None = Field(None, description="largest spatial tile; default: inference.tile")
    workspace_mb: int = Field(1024, ge=16, le=1 << 20, description="builder scratch memory limit (MiB)")
    fp16_fallback: bool = Field(True, description="int8 engines: layers left in float run in fp16 (false: fp32)")
    strongly_typed: bool | None = Field(
        None, description="null: weak typing with precision flags where TensorRT has them (10.x), else strong typing"
    )
    timing_cache: Path | None = Field(
        None, description="tactic timing cache, read if present and updated; default: tensorrt/timing.cache"
    )

    @field_validator("min_tile", "opt_tile", "max_tile")
    @classmethod
    def _tile(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and (not 2 <= len(v) <= 3 or any(s < 1 for s in v)):
            raise ValueError(f"a tile is 2 or 3 positive sizes, got {v}")
        return v

    @model_validator(mode="after")
    def _ordered(self) -> TensorRTSection:
        given = [b for b in (self.min_batch, self.opt_batch, self.max_batch) if b is not None]
        if given != sorted(given):
            raise ValueError(f"need min_batch <= opt_batch <= max_batch, got {given}")
        tiles = [t for t in (self.min_tile, self.opt_tile, self.max_tile) if t is not None]
        if len({len(t) for t in tiles}) > 1:
            raise ValueError(f"min/opt/max_tile need the same number of sizes, got {tiles}")
        for a, b in zip(tiles, tiles[1:]):
            if any(x > y for x, y in zip(a, b)):
                raise ValueError(f"need min_tile <= opt_tile <= max_tile in every axis, got {tiles}")
        return self


#: ONNX Runtime execution providers ``engine.providers`` may name (onnxruntime:* variants).
ORT_PROVIDERS = Literal["CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"]


class EngineSection(Section):
    name: str = "openvino"
    precision: Literal["fp32", "bf16", "fp16", "int8", "int8-bf16"] = "int8"
    threads: int | None = Field(None, ge=1, description="CPU threads; default: all cores")
    num_requests: int = Field(2, ge=1, le=64, description="requests in flight (OpenVINO async)")
    providers: list[ORT_PROVIDERS] = Field(
        default_factory=lambda: ["CPUExecutionProvider"],
        min_length=1,
        description="ONNX Runtime execution providers for onnxruntime:* variants, in priority order; "
        "a GPU provider that does not become active is an error (ORT would fall back to the CPU silently)",
    )
    tensorrt: TensorRTSection = Field(default_factory=TensorRTSection)

    @model_validator(mode="after")
    def _known_pair(self) -> EngineSection:
        check_variant(f"{self.name}:{self.precision}")
        return self

    @property
    def variant(self) -> str:
        return f"{self.name}:{self.precision}"


class NormalizeSection(Section):
    kind: Literal["percentile", "zscore", "none"] = "percentile"
    low: float = Field(1.0, ge=0, lt=100)
    high: float = Field(99.8, gt=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> NormalizeSection:
        if self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self


class LocalizationSection(Section):
    """SMLM post-processing thresholds (:class:`efficientbioai.smlm.postprocess.SpatialIntegration`)."""

    threshold: float = Field(0.5, ge=0, le=1, description="detections need a summed probability above this")
    clip: float = Field(0.1, ge=0, le=1, description="probabilities below this are ignored before summation")
    split: float = Field(0.8, ge=0, le=1, description="a pixel beside a maximum is a second emitter above this")
    in_graph: bool = Field(
        False,
        description="export the post-processing into the ONNX graph: engines return the dense maps "
        "(thresholds fixed at compress time; torch:fp32 still runs it right after the network)",
    )

    @model_validator(mode="after")
    def _ordered(self) -> LocalizationSection:
        if self.clip > self.threshold:
            raise ValueError(f"clip ({self.clip}) must not exceed threshold ({self.threshold})")
        return self


class InferenceSection(Section):
    task: str | None = Field(None, description="denoise, segment, localize, ...; default: the parser's task")
    input: Path | None = Field(None, description="file, folder or glob; default: data.evaluation")
    target: Path | None = Field(None, description="ground truth for `input`")
    output_dir: Path | None = Field(None, description="default: <experiment>/predictions")
    tile: list[int] = Field(default_factory=lambda: [128, 128], description="spatial tile size")
    overlap: float = Field(0.25, ge=0.0, lt=0.95)
    blend: Literal["gaussian", "constant"] = "gaussian"
    batch_size: int = Field(4, ge=1, le=1024)
    normalize: NormalizeSection = Field(default_factory=NormalizeSection)
    threshold: float = Field(0.5, description="segmentation: foreground above this")
    localization: LocalizationSection = Field(
        default_factory=LocalizationSection, description="SMLM: detection thresholds of the post-processing"
    )

    @field_validator("tile")
    @classmethod
    def _tile_positive(cls, v: list[int]) -> list[int]:
        if not 2 <= len(v) <= 3 or any(s < 1 for s in v):
            raise ValueError(f"tile must be 2 or 3 positive sizes, got {v}")
        return v


class LatencySection(Section):
    warmup: int = Field(5, ge=0)
    runs: int = Field(30, ge=3)
    batch_size: int | None = Field(None, ge=1, description="tiles per timed call; default inference.batch_size")


class EnergySection(Section):
    enabled: bool = True
    country_iso_code: str = Field("DEU", min_length=3, max_length=3)


class ReportSection(Section):
    compare: list[str] = Field(
        default_factory=lambda: ["torch:fp32", "openvino:fp32", "openvino:int8", "onnxruntime:int8"],
        description="variants measured side by side; the first torch:fp32 is the reference",
    )
    latency: LatencySection = Field(default_factory=LatencySection)
    energy: EnergySection = Field(default_factory=EnergySection)
    write_outputs: Literal["deploy", "all", "none"] = "deploy"
    max_accuracy_drop: float | None = Field(
        None,
        gt=0,
        description="largest drop of the primary metric vs fp32 (ground truth) a variant may show; "
        "unset: the largest quantize.*.max_accuracy_drop; variants outside it are marked in the report",
    )

    @field_validator("compare")
    @classmethod
    def _variants(cls, v: list[str]) -> list[str]:
        for item in v:
            check_variant(item)
        if len(set(v)) != len(v):
            raise ValueError(f"variants listed twice in {v}")
        return v


class DeploySection(Section):
    """Which built variant ``inference`` deploys, and the accuracy it may give up for speed."""

    select: Literal["fastest", "engine"] = Field(
        "fastest",
        description="fastest: compress times every built variant on this machine and deploys the fastest within "
        "the budget, never one slower than openvino:fp32; engine: deploy engine.name/precision as configured",
    )
    budget: dict[str, float | str] | None = Field(
        None,
        description="metric → largest allowed change vs fp32 on the validation split, signed the way that hurts: "
        "-0.01 (may fall by 0.01), '+5%' (may rise by 5 %); unset: the task family's default",
    )
    latency: LatencySection = Field(
        default_factory=lambda: LatencySection(warmup=3, runs=9), description="the timing compress selects by"
    )

    @field_validator("budget")
    @classmethod
    def _budget(cls, v: dict | None) -> dict | None:
        if v is not None:
            parse_budget(v)
        return v


class _CoreConfig(Section):
    """The sections every model has; :data:`Config` adds those the families register."""

    model: ModelSection
    data: DataSection = Field(default_factory=DataSection)
    prune: PruneSection = Field(default_factory=PruneSection)
    quantize: QuantizeSection = Field(default_factory=QuantizeSection)
    export: ExportSection = Field(default_factory=ExportSection)
    engine: EngineSection = Field(default_factory=EngineSection)
    inference: InferenceSection = Field(default_factory=InferenceSection)
    report: ReportSection = Field(default_factory=ReportSection)
    deploy: DeploySection = Field(default_factory=DeploySection)

    #: Folder of the YAML file this config came from (relative paths resolve against it).
    source_dir: Path | None = Field(None, exclude=True)

    @property
    def deployed_variant(self) -> str:
        """The variant ``inference.py`` deploys: the engine's, pruned when pruning is on."""
        return self.engine.variant + (":pruned" if self.prune.enabled else "")

    def variants(self) -> list[str]:
        """Every variant to build and measure: the fp32 reference, the report's list, the deployed one.

        With pruning on, the deployed engine's unpruned variant is kept next to its pruned one,
        so the report compares fp32, int8 and pruned+int8 side by side."""
        out = ["torch:fp32"] + [v for v in self.report.compare if v != "torch:fp32"]
        for v in (self.engine.variant, self.deployed_variant):
            if v not in out:
                out.append(v)
        floor = "openvino:fp32" + (":pruned" if self.prune.enabled else "")
        if self.deploy.select == "fastest" and floor not in out:
            out.append(floor)  # compress never deploys a variant slower than it
        if not self.prune.enabled and any(split_variant(v)[2] for v in out):
            raise ConfigError("report.compare lists pruned variants but prune.enabled is false")
        return out

    def artefact(self, variant: str) -> Path:
        """Absolute path of the artefact for ``variant`` (from ``deploy.yaml``)."""
        if variant not in self.artefacts:
            raise ConfigError(
                f"no artefact for variant {variant!r} in this deploy config; it has "
                f"{sorted(self.artefacts) or 'none'}. Add it to report.compare and run compress.py again."
            )
        return (self.source_dir or Path.cwd()) / self.artefacts[variant]


def _family_fields() -> dict[str, Any]:
    load_plugins()
    fields: dict[str, Any] = {}
    for name in SECTIONS.names():
        cls = SECTIONS.get(name)
        description, always = SECTION_INFO[name]
        if always:
            fields[name] = (cls, Field(default_factory=cls, description=description))
        else:
            fields[name] = (cls | None, Field(None, description=description))
    fields["artefacts"] = (
        dict[str, str],
        Field(default_factory=dict, description="written by compress: variant → file, relative to here"),
    )
    return fields


#: The whole config: the core sections and every registered family's section.
Config = create_model("Config", __base__=_CoreConfig, __module__=__name__, **_family_fields())


def split_variant(variant: str) -> tuple[str, str, bool]:
    """``"openvino:int8:pruned"`` → ``("openvino", "int8", True)``; ``"torch:fp32"`` → ``(..., False)``."""
    parts = variant.split(":")
    if len(parts) == 2:
        return parts[0], parts[1], False
    if len(parts) == 3 and parts[2] == "pruned":
        return parts[0], parts[1], True
    raise ValueError(f"variant {variant!r} must be 'engine:precision' or 'engine:precision:pruned'")


def check_variant(variant: str) -> None:
    """Raise ``ValueError`` unless ``variant`` is a known ``engine:precision[:pruned]``."""
    engine, precision, _ = split_variant(variant)
    if engine not in PRECISIONS:
        raise ValueError(f"unknown engine {engine!r} in {variant!r}; engines: {sorted(PRECISIONS)}")
    if precision not in PRECISIONS[engine]:
        raise ValueError(f"engine {engine!r} has no precision {precision!r}; choose one of {PRECISIONS[engine]}")


def _resolve_paths(node: Section, base: Path, names: Iterable[str] | None = None) -> None:
    """Make the relative ``Path`` fields of ``node`` (its fields ``names``, default all) and of its
    sub-sections absolute against ``base``."""
    for name in type(node).model_fields if names is None else names:
        value = getattr(node, name)
        if isinstance(value, Section):
            _resolve_paths(value, base)
        elif isinstance(value, Path) and not value.is_absolute():
            setattr(node, name, (base / value).resolve())


def _format_error(err: dict[str, Any], path: Path | str) -> str:
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(err["loc"][:-1])
        return f"{path}: unknown key '{loc}'" + (f" (allowed here: {', '.join(allowed)})" if allowed else "")
    if err["type"] == "missing":
        return f"{path}: missing required key '{loc}'"
    msg = err["msg"].removeprefix("Value error, ")
    return f"{path}: '{loc}': {msg} (got {err.get('input')!r})"


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    model: Any = Config
    for key in loc:
        field = getattr(model, "model_fields", {}).get(key)
        if field is None:
            return []
        model = field.annotation
        # an optional section (``X | None``): look inside the union for the section class
        model = next((a for a in get_args(model) if hasattr(a, "model_fields")), model)
    fields = getattr(model, "model_fields", {})
    return [k for k, f in fields.items() if not f.exclude]


def parse_config(data: Any, path: Path | str = "<config>", base_dir: Path | None = None) -> Config:
    """Validate a mapping as a :class:`Config`, raising :class:`ConfigError` naming every problem."""
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {type(data).__name__}")
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        lines = [_format_error(e, path) for e in exc.errors()]
        raise ConfigError("invalid config:\n  " + "\n  ".join(lines)) from None
    if base_dir is not None:
        cfg.source_dir = base_dir.resolve()
        _resolve_paths(cfg, cfg.source_dir, _CoreConfig.model_fields)  # a family's section keeps its paths as written
    return cfg


def load_config(path: PathLike) -> Config:
    """Read and validate a YAML config file (``yaml.safe_load``); paths resolve against its folder."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: is not a text file (not UTF-8); a config is a YAML file") from None
    return parse_config(data, path, base_dir=path.parent)


def dump_config(cfg: Config) -> str:
    """The config as YAML, every default filled in and paths as strings."""
    data = cfg.model_dump(mode="json", exclude={"source_dir"})
    return yaml.safe_dump(data, sort_keys=False)
