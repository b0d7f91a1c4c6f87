"""cellpose's own ``train.train_seg`` on generated nuclei, for training and post-pruning fine-tuning.

Training, test-loss and evaluation images come from disjoint seed ranges
(:data:`efficientbioai.datasets.nuclei.SEED_OFFSETS`); the trainer behind ``efficientbioai
train`` is :mod:`efficientbioai.training.cellpose`.
"""

from __future__ import annotations

import logging
import tempfile

import numpy as np
import torch

from efficientbioai.cellpose._import import cellpose_module
from efficientbioai.cellpose.settings import CellposeSection
from efficientbioai.datasets.nuclei import SEED_OFFSETS, synthetic_nuclei
from efficientbioai.terminal import bar as progress_bar

log = logging.getLogger(__name__)


def _images(split: str, count: int, shape: tuple[int, int]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    pairs = [
        synthetic_nuclei(shape, SEED_OFFSETS[split] + i) for i in progress_bar(range(count), desc=f"{split} images")
    ]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def train_seg(
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


def fine_tune_cellpose(net: torch.nn.Module, section: CellposeSection, steps: int, lr: float, batch_size: int) -> dict:
    """Continue training a (pruned) CPnet with cellpose's ``train_seg`` for about ``steps`` batches
    on generated nuclei; returns the loss curve per epoch for the report."""
    images = section.train.images
    epochs = max(1, int(np.ceil(steps * batch_size / images)))
    with tempfile.TemporaryDirectory(prefix="cellpose_finetune_") as tmp:
        _, train_losses, test_losses, images = train_seg(net, section, epochs, lr, batch_size, tmp)
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
