"""Training crops and fine-tuning helpers the built-in families share (a mixin of ``BaseParser``).

Pruned models are fine-tuned on the parser's own synthetic pairs when it has them
(:meth:`TrainingCrops.training_batch`), scored with the task's metric, and the run is
recorded by :func:`tuning_record`.
"""

from __future__ import annotations

import numpy as np
import torch

from efficientbioai.errors import ConfigError
from efficientbioai.parsers.data_splits import random_crop
from efficientbioai.registry import TASKS


class TrainingCrops:
    """Crops of simulated training pairs, the generic fine-tuning loss and metric, Taylor importance."""

    #: Synthetic images per split behind :meth:`training_batch`.
    training_pool: int = 128

    def training_batch(
        self, index: int, batch_size: int, tile: list[int] | None = None, split: str = "train"
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """``(inputs (B, C, *tile), targets (B, C_out, *tile))`` of the parser's training data,
        for fine-tuning; ``None`` when the family has no built-in training data.

        Crops (random position and flips, seeded by ``index``) of synthetic images twice the
        tile size, each normalised as a whole before cropping — as at inference, where whole
        images are normalised and then tiled. Normalising a small crop on its own shifts the
        input distribution and the fine-tuned model pays for it on real-sized images. A pool
        of :attr:`training_pool` images per split is simulated on first use and reused.
        """
        tile = tuple(tile or self.config.inference.tile)
        shape = tuple(2 * t for t in tile)
        rng = np.random.default_rng([index, batch_size, 20251122])
        xs, ys = [], []
        for _ in range(batch_size):
            pair = self._pooled_pair(split, int(rng.integers(self.training_pool)), shape)
            if pair is None:
                return None
            x, y = pair
            both = random_crop(np.concatenate([x, y]), tile, rng)
            for axis in range(1, both.ndim):
                if rng.random() < 0.5:
                    both = np.flip(both, axis)
            xs.append(both[: len(x)])
            ys.append(both[len(x) :])
        return np.stack(xs).astype(np.float32), np.stack(ys).astype(np.float32)

    def _pooled_pair(self, split: str, seed: int, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray] | None:
        pool = self.__dict__.setdefault("_training_pool_cache", {})
        key = (split, seed, shape)
        if key not in pool:
            try:
                image, target = self.synthetic_pair(split, seed, shape)
            except ConfigError:
                return None
            x = self.preprocess(self.channels_first(image)).astype(np.float32)
            pool[key] = (x, np.asarray(target, np.float32).reshape(-1, *shape))
        return pool[key]

    def fine_tune_loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of the generic fine-tuning loop (mean squared error)."""
        return torch.nn.functional.mse_loss(output, target)

    def fine_tune_metric(self, output: np.ndarray, target: np.ndarray) -> tuple[str, float] | None:
        """The task's primary metric on a batch of raw outputs, for the fine-tuning curve."""
        task = TASKS.get(self.task_name)(self.config, self)
        try:
            values = [task.tile_metric(o, t[0] if t.shape[0] == 1 else t) for o, t in zip(output, target)]
        except NotImplementedError:
            return None
        return task.primary_metric, float(np.mean(values))

    def taylor_loss_fn(self):
        """A ``loss(model)`` on one training batch for Taylor importance, or ``None``."""
        pair = self.training_batch(0, 2)
        if pair is None:
            return None
        x, y = (torch.from_numpy(a) for a in pair)
        return lambda model: self.fine_tune_loss(model(x), y)


def tuning_record(mode: str, settings, curve: list[dict]) -> dict:
    """What a fine-tuning run did, for the manifest and report (also for parsers' own recipes)."""
    return {"mode": mode, "steps": settings.steps, "lr": settings.lr, "batch_size": settings.batch_size, "curve": curve}
