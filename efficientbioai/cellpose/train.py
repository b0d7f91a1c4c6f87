"""Train a CPnet with cellpose's own ``train.train_seg`` on generated nuclei images.

    efficientbioai train --config configs/cellpose_nuclei.yaml

Training, test-loss and evaluation images come from disjoint seed ranges
(:data:`efficientbioai.datasets.nuclei.SEED_OFFSETS`). The model file cellpose writes (a
state_dict, with ``diam_mean`` and ``diam_labels`` inside) is copied atomically to
``model.checkpoint``, with a JSON record beside it (command, settings, loss curves, AP on
held-out images).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from efficientbioai.cellpose._import import cellpose_module
from efficientbioai.cellpose.settings import CellposeSection
from efficientbioai.config import Config, load_config
from efficientbioai.datasets.nuclei import SEED_OFFSETS, synthetic_nuclei
from efficientbioai.errors import ConfigError
from efficientbioai.manifest import write_json
from efficientbioai.parsers.checkpoint import training_output

log = logging.getLogger(__name__)


def _images(split: str, count: int, shape: tuple[int, int]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    pairs = [synthetic_nuclei(shape, SEED_OFFSETS[split] + i) for i in tqdm(range(count), desc=f"{split} images")]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _train_seg(
    net: torch.nn.Module, section: CellposeSection, epochs: int, lr: float, batch_size: int, folder: str
) -> tuple[str, np.ndarray, np.ndarray, int]:
    """cellpose's ``train_seg`` on generated nuclei (train / validation seeds); returns the model
    file it wrote, the train and test losses per epoch, and the number of training images."""
    settings = section.train
    shape = tuple(settings.image_shape)
    x_train, y_train = _images("train", settings.images, shape)
    x_test, y_test = _images("validation", settings.test_images, shape)
    path, train_losses, test_losses = cellpose_module("train").train_seg(
        net,
        train_data=x_train,
        train_labels=y_train,
        test_data=x_test,
        test_labels=y_test,
        channels=list(section.channels),
        normalize=True,
        batch_size=batch_size,
        learning_rate=lr,
        weight_decay=settings.weight_decay,
        n_epochs=epochs,
        bsize=settings.bsize,
        min_train_masks=1,
        save_path=folder,
        save_every=10**9,
        model_name="model",
    )
    return path, train_losses, test_losses, len(x_train)


def train_cellpose(config: Config | str | Path, output: str | Path | None = None) -> Path:
    """Train the config's CPnet (``model.params``) on generated nuclei; returns the checkpoint path
    (``output``, default a new file beside ``model.checkpoint``)."""
    from efficientbioai.compression.pipeline import create_parser

    cfg = config if isinstance(config, Config) else load_config(config)
    source = str(config) if not isinstance(config, Config) else "<config>.yaml"
    section = cfg.cellpose or CellposeSection()
    settings = section.train
    parser = create_parser(cfg)
    if parser.task_name != "instance":
        raise ConfigError(f"model.parser {cfg.model.parser!r} is not a Cellpose model; nothing was trained")
    out = training_output(cfg.model.checkpoint, output)
    torch.manual_seed(settings.seed)
    net = parser.build_model().net
    logging.getLogger("cellpose.train").setLevel(logging.INFO)  # its per-10-epoch loss lines are the progress
    start = time.time()
    with tempfile.TemporaryDirectory(prefix="cellpose_train_") as tmp:
        path, train_losses, test_losses, _ = _train_seg(
            net, section, settings.epochs, settings.learning_rate, settings.batch_size, tmp
        )
        seconds = time.time() - start
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(f".{out.name}.partial")
        shutil.copyfile(path, partial)
        os.replace(partial, out)
    record = {
        "command": f"efficientbioai train --config {source} --output {out}",
        "train": settings.model_dump(mode="json"),
        "parameters": int(sum(p.numel() for p in net.parameters())),
        "diam_mean": float(net.diam_mean.item()),
        "diam_labels": float(net.diam_labels.item()),
        "train_loss": [round(float(v), 4) for v in train_losses],
        "test_loss": {i: round(float(v), 4) for i, v in enumerate(test_losses) if v},
        "seconds": round(seconds, 1),
        "torch": torch.__version__,
        "cellpose": _cellpose_version(),
    }
    write_json(out.with_suffix(".json"), record)
    log.info("cellpose model written to %s (%.0f s)", out, seconds)
    return out


def _cellpose_version() -> str:
    from importlib.metadata import version

    return version("cellpose")


def fine_tune_cellpose(net: torch.nn.Module, section: CellposeSection, steps: int, lr: float, batch_size: int) -> dict:
    """Continue training a (pruned) CPnet with cellpose's ``train_seg`` for about ``steps`` batches
    on generated nuclei; returns the loss curve per epoch for the report."""
    images = section.train.images
    epochs = max(1, int(np.ceil(steps * batch_size / images)))
    with tempfile.TemporaryDirectory(prefix="cellpose_finetune_") as tmp:
        _, train_losses, test_losses, images = _train_seg(net, section, epochs, lr, batch_size, tmp)
    net.eval()
    curve = [
        {
            "step": (i + 1) * int(np.ceil(images / batch_size)),
            "train_loss": round(float(v), 5),
            **({"held_out_loss": round(float(test_losses[i]), 5)} if test_losses[i] else {}),
        }
        for i, v in enumerate(train_losses)
    ]
    return {
        "mode": "cellpose train_seg (generated nuclei)",
        "steps": epochs * int(np.ceil(images / batch_size)),
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "curve": curve,
    }
