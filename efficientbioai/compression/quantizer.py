"""What every post-training quantizer shares: one ``apply`` and the node-name matching."""

from __future__ import annotations

import fnmatch
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from efficientbioai.errors import ConfigError


@dataclass
class Validation:
    """Held-out ``(input batch, target)`` pairs and the task metric of a raw output ``(C, *tile)``."""

    pairs: list[tuple[np.ndarray, np.ndarray]]
    metric: Callable[[np.ndarray, np.ndarray], float]

    def score(self, predict: Callable[[np.ndarray], np.ndarray]) -> float:
        """Mean metric of ``predict`` (batch in, first output out) over the pairs."""
        return float(np.mean([self.metric(np.asarray(predict(x))[0], y) for x, y in self.pairs]))


class Quantizer(ABC):
    """Turns a verified fp32 ONNX file into an int8 artefact for one engine."""

    #: The variant (``engine:precision``) whose artefact this quantizer writes.
    variant: str = ""

    def __init__(self, settings, keep_float: list[str], validation: Validation | None = None) -> None:
        self.settings = settings
        self.keep_float = keep_float
        self.validation = validation

    @abstractmethod
    def apply(self, onnx_path: Path, calibration: list[np.ndarray], out_dir: Path) -> Path:
        """Write the int8 artefact into ``out_dir`` and return its path."""


def match_nodes(onnx_path: Path, patterns: list[str]) -> list[str]:
    """ONNX node names matching ``patterns`` (fnmatch); an unmatched pattern is a config error."""
    if not patterns:
        return []
    names = [n.name for n in onnx.load(str(onnx_path), load_external_data=False).graph.node]
    out: list[str] = []
    for pattern in patterns:
        hits = fnmatch.filter(names, pattern)
        if not hits:
            raise ConfigError(
                f"quantize.keep_float: {pattern!r} matches no node of {onnx_path.name}; "
                f"node names look like {names[:4]} (see them all with netron)"
            )
        out.extend(h for h in hits if h not in out)
    return out
