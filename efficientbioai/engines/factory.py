"""Build the engine for a variant (``engine:precision``) of a compressed experiment."""

from __future__ import annotations

import os

from efficientbioai.config import Config, split_variant
from efficientbioai.engines.base import BaseInfer
from efficientbioai.engines.ort_providers import session_providers
from efficientbioai.parsers.base import BaseParser
from efficientbioai.parsers.pruned_checkpoint import load_pruned
from efficientbioai.registry import ENGINES


def create_engine(variant: str, config: Config, parser: BaseParser) -> BaseInfer:
    """The engine for ``variant``, loading its artefact from ``config.artefacts``.

    ``torch:fp32`` rebuilds the model through the parser (the checkpoint is the artefact);
    every other variant loads the file compress.py wrote.
    """
    engine_name, precision, pruned = split_variant(variant)
    cls = ENGINES.get(engine_name)
    threads = config.engine.threads or os.cpu_count() or 1
    if engine_name == "torch":
        model = load_pruned(parser.build_model(), config.artefact(variant)) if pruned else parser.load_model()
        return cls(model, precision, threads)
    kwargs = {"num_requests": config.engine.num_requests} if engine_name == "openvino" else {}
    if engine_name == "tensorrt":
        kwargs = {"device": config.engine.tensorrt.device}
    elif engine_name == "onnxruntime" and config.engine.providers != ["CPUExecutionProvider"]:
        kwargs = session_providers(config, variant, config.artefact(variant))
    return cls(config.artefact(variant), precision, threads, **kwargs)
