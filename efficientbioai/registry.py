"""Name → class registries for parsers, engines, quantizers, pruners, tasks, trainers and config sections.

One decorator to register, one call to look up (as in timm's ``register_model`` /
``create_model``). Built-in entries are imported lazily, so asking for the ONNX Runtime engine
never imports OpenVINO. A user's own class is named ``package.module:ClassName``; a package
adds families (sections, parsers, trainers) through the ``efficientbioai.plugins`` entry point
group, loaded before the config schema is built.

Examples
--------
>>> from efficientbioai.registry import PARSERS, register_parser
>>> @register_parser("my_net")
... class MyParser: ...
>>> PARSERS.get("my_net") is MyParser
True
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, TypeVar

from efficientbioai.errors import ConfigError

T = TypeVar("T")


class Registry:
    """A named set of classes of one kind (``parser``, ``engine``, ...)."""

    def __init__(self, kind: str, builtins: dict[str, str] | None = None) -> None:
        self.kind = kind
        self._items: dict[str, Any] = {}
        self._builtins = dict(builtins or {})

    def register(self, name: str) -> Callable[[T], T]:
        """Class decorator adding the class under ``name``."""

        def add(cls: T) -> T:
            self._items[name] = cls
            return cls

        return add

    def names(self) -> list[str]:
        """Every name that can be looked up (registered or built-in)."""
        return sorted(set(self._items) | set(self._builtins))

    def get(self, name: str) -> Any:
        """The class for ``name``, or for a ``package.module:ClassName`` plugin path."""
        if ":" in name:
            return _import_plugin(name, self.kind)
        if name not in self._items and name in self._builtins:
            importlib.import_module(self._builtins[name])
        if name not in self._items:
            raise ConfigError(
                f"unknown {self.kind} {name!r}; available: {', '.join(self.names())}"
                f" (or name your own class as 'package.module:ClassName')"
            )
        return self._items[name]


def _import_plugin(path: str, kind: str) -> Any:
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"{kind} {path!r} must look like 'package.module:ClassName'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"cannot import module {module_name!r} for {kind} {path!r}: {exc}. Is it installed, or on PYTHONPATH?"
        ) from exc
    if not hasattr(module, attr):
        raise ConfigError(f"module {module_name!r} has no {attr!r} (from {kind} {path!r})")
    return getattr(module, attr)


PARSERS = Registry(
    "parser",
    {
        "monai_unet": "efficientbioai.parsers.monai_unet",
        "dilatedloc": "efficientbioai.parsers.dilatedloc",
        "cellpose": "efficientbioai.parsers.cellpose",
        "deepstorm": "efficientbioai.parsers.deepstorm",
        "module": "efficientbioai.parsers.module",
        "bioimageio": "efficientbioai.parsers.bioimageio",
    },
)
ENGINES = Registry(
    "engine",
    {
        "torch": "efficientbioai.engines.torch_engine",
        "onnxruntime": "efficientbioai.engines.ort_engine",
        "openvino": "efficientbioai.engines.openvino_engine",
        "tensorrt": "efficientbioai.engines.tensorrt_engine",
    },
)
QUANTIZERS = Registry(
    "quantizer",
    {
        "onnxruntime": "efficientbioai.compression.quantize_ort",
        "openvino": "efficientbioai.compression.quantize_ov",
        "tensorrt": "efficientbioai.compression.quantize_trt",
    },
)
PRUNERS = Registry(
    "pruner",
    {
        "torch_pruning": "efficientbioai.compression.prune_tp",
        "nni": "efficientbioai.compression.prune_nni",
    },
)
TASKS = Registry(
    "task",
    {
        "denoise": "efficientbioai.tasks.image_to_image",
        "segment": "efficientbioai.tasks.image_to_image",
        "localize": "efficientbioai.tasks.localize",
        "instance": "efficientbioai.tasks.instance",
        "reconstruct": "efficientbioai.tasks.reconstruct",
    },
)

TRAINERS = Registry(
    "trainer",
    {
        "dilatedloc": "efficientbioai.training.dilatedloc",
        "deepstorm": "efficientbioai.training.deepstorm",
        "cellpose": "efficientbioai.training.cellpose",
        "monai_unet": "efficientbioai.training.denoiser",
    },
)
#: Top-level config sections a family owns: name → module that registers it.
SECTIONS = Registry(
    "config section",
    {
        "runtime": "efficientbioai.runtime.settings",
        "simulation": "efficientbioai.smlm.settings",
        "train": "efficientbioai.smlm.settings",
        "acquisition": "efficientbioai.smlm.acquisition",
        "deepstorm": "efficientbioai.deepstorm.settings",
        "cellpose": "efficientbioai.cellpose.settings",
    },
)
#: name → (description, always present with its defaults rather than optional)
SECTION_INFO: dict[str, tuple[str, bool]] = {}


def register_section(name: str, description: str, always: bool = False) -> Callable[[T], T]:
    """Class decorator: the :class:`~efficientbioai.section.Section` is the top-level config key ``name``."""

    def add(cls: T) -> T:
        SECTION_INFO[name] = (description, always)
        return SECTIONS.register(name)(cls)

    return add


def trainer_for(parser: str) -> Callable[..., Any]:
    """``train(config, resume=False, output=None) -> Path`` for ``model.parser``, or a clear refusal."""
    if ":" in parser:
        _import_plugin(parser, "parser")  # its module may register a trainer under this name
    if parser not in TRAINERS.names():
        raise ConfigError(
            f"efficientbioai train has no trainer for model.parser {parser!r}; it trains "
            f"{', '.join(TRAINERS.names())} (a family adds one with @register_trainer({parser!r}))"
        )
    return TRAINERS.get(parser)


def load_plugins() -> None:
    """Import every module of the ``efficientbioai.plugins`` entry point group (they register themselves)."""
    from importlib.metadata import entry_points

    for point in entry_points(group="efficientbioai.plugins"):
        try:
            point.load()
        except Exception as exc:
            raise ConfigError(f"plugin {point.name!r} ({point.value}) failed to load: {exc}") from exc


register_parser = PARSERS.register
register_engine = ENGINES.register
register_quantizer = QUANTIZERS.register
register_pruner = PRUNERS.register
register_task = TASKS.register
register_trainer = TRAINERS.register
