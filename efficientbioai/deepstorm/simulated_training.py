"""Deep-STORM's training batches, validation set and scores, and post-pruning fine-tuning.

``efficientbioai train`` (:mod:`efficientbioai.training.deepstorm`) and the fine-tuning after
pruning share these: patches with spike targets, the held-out pool and a simulated validation
filament stack scored by NMSE/PSNR of its summed reconstruction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from efficientbioai.deepstorm import SEEDS
from efficientbioai.deepstorm.data import PatchSet, simulate_patches, spike_targets
from efficientbioai.deepstorm.filaments import simulate_filament_stack
from efficientbioai.deepstorm.loss import deepstorm_loss
from efficientbioai.deepstorm.reconstruction_metrics import reconstruction_scores, truth_image
from efficientbioai.deepstorm.settings import DeepSTORMSection
from efficientbioai.deepstorm.stack import frame_batches
from efficientbioai.models.distillation import Distiller
from efficientbioai.terminal import bar as progress_bar

log = logging.getLogger(__name__)


def patch_batch(model, pool: PatchSet, idx: np.ndarray, spec: DeepSTORMSection):
    """Network input and targets for the patches ``idx``."""
    u = model.upsample
    size = spec.patch_size * u
    x = torch.from_numpy(pool.inputs[idx][:, None].copy())
    y = spike_targets(
        [pool.positions[i] for i in idx], size, pool.pixel_size / u, spec.target_sigma_px, spec.target_scale
    )
    return x, y, size


def validation_loss(model, pool: PatchSet, spec: DeepSTORMSection, batch: int = 16) -> float:
    """Mean loss over the held-out pool (eval mode, no gradients)."""
    model.eval()
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(pool), batch):
            idx = np.arange(start, min(start + batch, len(pool)))
            x, y, size = patch_batch(model, pool, idx, spec)
            loss, _ = deepstorm_loss(model(x)[..., :size, :size], y, spec.target_sigma_px, spec.l1_weight)
            total += float(loss) * len(idx)
    return total / len(pool)


def validation_scores(model, frames: np.ndarray, truth: np.ndarray, spec: DeepSTORMSection) -> dict[str, float]:
    """NMSE/PSNR of the summed reconstruction of a validation stack (the task's own metric)."""
    model.eval()
    _, h, w = frames.shape
    m, u = model.multiple, model.upsample
    shape = (u * (h + (-h) % m), u * (w + (-w) % m))
    with torch.no_grad():  # negatives clipped, as Deep-STORM does, and summed over the frames
        parts = [torch.relu(model(torch.from_numpy(x))[:, 0]).sum(0) for x in frame_batches(frames, 16, m)]
    image = (sum(parts) if parts else torch.zeros(shape)).numpy()[: u * h, : u * w]
    return reconstruction_scores(image, truth, spec.metric_sigma_px)


@dataclass
class ValidationSet:
    """What training and fine-tuning are scored on: held-out patches (validation loss) and a
    simulated filament stack with its ground-truth image (NMSE / PSNR), all from the
    validation seeds."""

    pool: PatchSet
    frames: np.ndarray
    image: np.ndarray

    @classmethod
    def simulate(cls, sim, spec: DeepSTORMSection, frames: int, upsample: int) -> ValidationSet:
        pool = simulate_patches(sim, spec, spec.validation_patches, SEEDS["validation"])
        stack, truth = simulate_filament_stack(sim.for_test(), spec.filaments, frames, SEEDS["validation"] + 1)
        return cls(pool, stack, truth_image(truth, stack.shape[1:], sim.pixel_size, upsample))

    def point(self, model, spec: DeepSTORMSection, step: int, train_loss: float | None) -> dict:
        scores = validation_scores(model, self.frames, self.image, spec)
        return {
            "step": step,
            "train_loss": None if train_loss is None else round(train_loss, 4),
            "val_loss": round(validation_loss(model, self.pool, spec), 4),
            **{k: round(v, 3) for k, v in scores.items()},
        }


def fine_tune_deepstorm(
    model: torch.nn.Module,
    sim,
    spec: DeepSTORMSection,
    settings,
    teacher: torch.nn.Module | None = None,
    validation_frames: int = 32,
) -> list[dict]:
    """Continue training a (pruned) deployed Deep-STORM model on freshly simulated patches with
    its own loss plus, with a ``teacher`` (the unpruned model), distillation of its output and
    features (``settings``: a :class:`~efficientbioai.config.FineTuneSection`); returns the
    curve: training and validation loss, NMSE and PSNR of a summed validation filament stack
    every ``settings.eval_every`` steps.

    The deployed model clips (and may sum frames) in its graph; the loss needs the linear
    per-frame output, so both are switched off while training (in the teacher too) and restored
    afterwards. The normalisation buffers are those of the original training set and stay.
    """
    steps, batch_size, eval_every = settings.steps, settings.batch_size, settings.eval_every
    nets = [m for m in (model, teacher) if m is not None]
    flags = [(m.sum_frames, m.clip) for m in nets]
    for m in nets:
        m.sum_frames, m.clip = False, False
    distiller = None
    try:
        pool = simulate_patches(sim, spec, min(spec.patches, steps * batch_size), SEEDS["train"] + 7_000_000)
        validation = ValidationSet.simulate(sim, spec, validation_frames, model.upsample)
        curve = [validation.point(model, spec, 0, None)]
        rng = np.random.default_rng(7)
        if teacher is not None:
            example = patch_batch(model, pool, [0], spec)[0]
            distiller = Distiller(model, teacher, example, settings.distill_outputs, settings.distill_features)
        extra = list(distiller.parameters()) if distiller is not None else []
        opt = torch.optim.Adam([*model.parameters(), *extra], lr=settings.lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, steps))
        bar = progress_bar(range(steps), desc="fine-tuning Deep-STORM", mininterval=2.0)
        for step in bar:
            model.train()
            x, y, size = patch_batch(model, pool, rng.choice(len(pool), batch_size, replace=False), spec)
            out = model(x)
            loss, _ = deepstorm_loss(out[..., :size, :size], y, spec.target_sigma_px, spec.l1_weight)
            if distiller is not None:
                loss = loss + distiller.loss(x, out)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if (step + 1) % eval_every == 0 or step + 1 == steps:
                curve.append(validation.point(model, spec, step + 1, loss.item()))
                bar.set_postfix(nmse=curve[-1]["nmse"], psnr=curve[-1]["psnr"])
    finally:
        if distiller is not None:
            distiller.close()
        for m, (sums, clips) in zip(nets, flags):
            m.sum_frames, m.clip = sums, clips
        model.eval()
    return curve
