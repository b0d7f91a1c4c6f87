"""``compress`` and ``load_engine``: the Python API's objects in, objects out.

    exp = efficientbioai.compress(config="configs/monai_unet_denoise2d.yaml", exp_path="out/den2d")
    engine = efficientbioai.load_engine(exp, "openvino:int8")
    y = engine(x)                                         # (N, C, *tile) float32 in and out

The config is a YAML path, a dict of the same sections, or a :class:`Config`. A plain
``nn.Module`` goes in as ``model``: it needs no parser, only the task and tile in the config.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from efficientbioai.compression import build_experiment
from efficientbioai.config import Config, load_config, parse_config
from efficientbioai.engines.base import BaseInfer
from efficientbioai.engines.factory import create_engine
from efficientbioai.errors import ArtefactError, ConfigError
from efficientbioai.evaluation.selection import select_deployment
from efficientbioai.integrity import check_artefacts, variant_files
from efficientbioai.io.images import list_images
from efficientbioai.parsers.base import create_parser
from efficientbioai.parsers.module import ModuleParser, check_rebuilds, module_target

Images = str | Path | np.ndarray | list[np.ndarray]


@dataclass(frozen=True)
class Experiment:
    """A compressed experiment folder (what ``compress`` wrote): its deploy config and artefacts."""

    path: Path

    @classmethod
    def open(cls, where: Experiment | str | Path) -> Experiment:
        """An experiment from its folder or its ``deploy.yaml``."""
        if isinstance(where, Experiment):
            return where
        folder = Path(where).resolve()
        folder = folder.parent if folder.suffix in (".yaml", ".yml") else folder
        if not (folder / "deploy.yaml").is_file() or not (folder / "manifest.json").is_file():
            raise ArtefactError(f"{folder} is not a finished compress output (no deploy.yaml and manifest.json)")
        return cls(folder)

    @property
    def deploy_yaml(self) -> Path:
        return self.path / "deploy.yaml"

    @property
    def config(self) -> Config:
        """The deploy config (a fresh copy on each access)."""
        return load_config(self.deploy_yaml)

    @property
    def variants(self) -> list[str]:
        """Every variant built, e.g. ``["torch:fp32", "openvino:int8", ...]``."""
        return list(self.config.artefacts)

    @property
    def deployed(self) -> str:
        return self.config.deployed_variant


def compress(
    config: str | Path | dict | Config,
    model: nn.Module | None = None,
    *,
    exp_path: str | Path,
    overwrite: bool = False,
    calibration: Images | None = None,
) -> Experiment:
    """Prune (if configured), quantize, export and build every variant; the written experiment.

    Parameters
    ----------
    config
        A YAML path, a dict of config sections, or a :class:`Config`. With ``model`` the
        ``model`` section may be left out; ``inference.task`` and ``inference.tile`` say what
        the network does and the tile it runs on.
    model
        Any ``nn.Module`` whose class can be imported (``package.module:Class``), with its
        trained weights; ``deploy.yaml`` records the class, ``model.kwargs`` (its constructor
        arguments, given in ``config``) and ``model_fp32.pt`` the weights.
    exp_path
        The experiment folder to write (``overwrite`` replaces an earlier experiment).
    calibration
        The user's raw images for int8 calibration: a file, folder or glob, or arrays.

    Examples
    --------
    >>> exp = compress({"inference": {"task": "denoise", "tile": [64, 64]},
    ...                 "data": {"calibration": {"source": "files", "inputs": "raw/"},
    ...                          "evaluation": {"source": "files", "inputs": "raw/"}}},
    ...                model=net, exp_path="out/mynet")                # doctest: +SKIP
    """
    cfg = _as_config(config, model)
    if model is not None:
        check_rebuilds(model, cfg)
    make_parser = (lambda c: ModuleParser(c, model)) if model is not None else create_parser
    with images_as_files(calibration, "calibration") as calibration_path:
        deploy = build_experiment.compress(cfg, exp_path, overwrite, calibration_path, make_parser, select_deployment)
    return Experiment(deploy.parent)


def load_engine(exp: Experiment | str | Path, variant: str | None = None, trust_modified: bool = False) -> BaseInfer:
    """The engine of one built variant (default: the deployed one), checked against the manifest.

    ``engine(x)`` maps a float32 batch ``(N, C, *tile)`` to the network's raw output.
    """
    exp = Experiment.open(exp)
    config = exp.config
    variant = variant or config.deployed_variant
    if variant not in config.artefacts:
        raise ConfigError(f"{exp.path} has no variant {variant!r}; it has {', '.join(config.artefacts)}")
    check_artefacts(exp.path, variant_files(config, [variant]), trust_modified)
    return create_engine(variant, config, create_parser(config))


def _as_config(config: str | Path | dict | Config, model: nn.Module | None) -> Config:
    if isinstance(config, str | Path):
        if model is None:
            return load_config(config)
        config = load_config(config).model_dump(exclude={"source_dir"})
    if isinstance(config, Config):
        config = config.model_dump(exclude={"source_dir"})
    if not isinstance(config, dict):
        raise ConfigError(f"config must be a YAML path, a dict or a Config, got {type(config).__name__}")
    data: dict[str, Any] = dict(config)
    if model is not None:
        if not isinstance(model, nn.Module):
            raise ConfigError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        data["model"] = {**data.get("model", {}), "parser": "module", "target": module_target(model)}
    return parse_config(data, "<config dict>", base_dir=Path.cwd())


@contextmanager
def images_as_files(images: Images | None, what: str) -> Iterator[Path | None]:
    """A path for ``images``: paths as given (checked), arrays as ``.npy`` files in a temporary folder."""
    if images is None or isinstance(images, str | Path):
        if images is not None:
            list_images(images)  # fail now with the message that names the path
        yield None if images is None else Path(images)
        return
    arrays = [images] if isinstance(images, np.ndarray) else list(images)
    if not arrays or not all(isinstance(a, np.ndarray) for a in arrays):
        raise ConfigError(f"{what}: give a path, a numpy array or a list of arrays")
    with tempfile.TemporaryDirectory(prefix=f"efficientbioai_{what}_") as tmp:
        for i, a in enumerate(arrays):
            np.save(Path(tmp) / f"{what}_{i:04d}.npy", a)
        yield Path(tmp)
