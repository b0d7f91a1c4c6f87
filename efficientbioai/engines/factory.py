"""Build the engine for a variant (``engine:precision``) of a compressed experiment."""

from __future__ import annotations

import os

from efficientbioai.config import Config
from efficientbioai.engines.base import BaseInfer
from efficientbioai.parsers.base import BaseParser
from efficientbioai.registry import ENGINES


def create_engine(variant: str, config: Config, parser: BaseParser) -> BaseInfer:
    """The engine for ``variant``, loading its artefact from ``config.artefacts``.

    ``torch:fp32`` rebuilds the model through the parser (the checkpoint is the artefact);
    every other variant loads the file compress.py wrote.
    """
    engine_name, _, precision = variant.partition(":")
    cls = ENGINES.get(engine_name)
    threads = config.engine.threads or os.cpu_count() or 1
    if engine_name == "torch":
        return cls(parser.load_model(), precision, threads)
    kwargs = {"num_requests": config.engine.num_requests} if engine_name == "openvino" else {}
    return cls(config.artefact(variant), precision, threads, **kwargs)
