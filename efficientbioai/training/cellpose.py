"""Train a CPnet with cellpose's own ``train.train_seg`` on generated nuclei images
(:mod:`efficientbioai.cellpose.train_seg`); the model file cellpose writes (a state_dict, with
``diam_mean`` and ``diam_labels`` inside) is copied atomically to the output.

    efficientbioai train --config configs/cellpose_nuclei.yaml
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import torch

from efficientbioai.cellpose.settings import CellposeSection
from efficientbioai.cellpose.train_seg import train_seg
from efficientbioai.config import Config
from efficientbioai.errors import ConfigError
from efficientbioai.manifest import write_json
from efficientbioai.registry import register_trainer
from efficientbioai.training import start_training, train_command

log = logging.getLogger(__name__)


@register_trainer("cellpose")
def train_cellpose(config: Config | str | Path, resume: bool = False, output: str | Path | None = None) -> Path:
    """Train the config's CPnet (``model.params``) on generated nuclei; returns the checkpoint path
    (``output``, default a new file beside ``model.checkpoint``)."""
    if resume:
        raise ConfigError("--resume is not supported for cellpose training (cellpose's train_seg starts anew)")

    cfg, source, parser, out = start_training(config, output, "instance", "a Cellpose model", simulated=False)
    section = cfg.cellpose or CellposeSection()
    settings = section.train
    torch.manual_seed(settings.seed)
    net = parser.build_model().net
    logging.getLogger("cellpose.train").setLevel(logging.INFO)  # its per-10-epoch loss lines are the progress
    start = time.time()
    with tempfile.TemporaryDirectory(prefix="cellpose_train_") as tmp:
        path, train_losses, test_losses, _ = train_seg(
            net, section, settings.epochs, settings.learning_rate, settings.batch_size, tmp
        )
        seconds = time.time() - start
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(f".{out.name}.partial")
        shutil.copyfile(path, partial)
        os.replace(partial, out)
    record = {
        "command": train_command(source, out),
        "train": settings.model_dump(mode="json"),
        "parameters": int(sum(p.numel() for p in net.parameters())),
        "diam_mean": float(net.diam_mean.item()),
        "diam_labels": float(net.diam_labels.item()),
        "train_loss": [round(float(v), 4) for v in train_losses],
        "test_loss": {i: round(float(v), 4) for i, v in enumerate(test_losses) if v},
        "seconds": round(seconds, 1),
        "torch": torch.__version__,
        "cellpose": version("cellpose"),
    }
    write_json(out.with_suffix(".json"), record)
    log.info("cellpose model written to %s (%.0f s)", out, seconds)
    return out
