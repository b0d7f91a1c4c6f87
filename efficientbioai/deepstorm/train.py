"""Train Deep-STORM on simulated high-density patches (``efficientbioai train --config X``).

Follows Deep-STORM's ``Training.py``: a fixed pool of simulated patches (``deepstorm.patches``,
from the train seed range) and a held-out pool (validation seeds); the dataset normalisation
statistics are computed on the training pool and stored in the model's buffers; Adam; the
loss of :mod:`efficientbioai.deepstorm.loss`; the checkpoint with the lowest validation loss is
kept (``save_best_only``). The L1 weight ramps up linearly over the first 10 % of the steps:
at full weight from step 0 it drives an untrained network's output to zero, and the first few
hundred steps are lost climbing out of that. Deep-STORM's plateau schedule becomes a StepLR (``train.lr_step``,
``train.lr_decay``) because a CPU run has a fixed step budget. Every ``validation_every`` steps
the validation loss and NMSE/PSNR of a reconstructed validation filament stack (its own seeds,
``train.validation_frames`` frames) are logged; the JSON record beside the checkpoint holds the
command, the settings, the statistics and that curve.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from efficientbioai.config import Config, load_config
from efficientbioai.deepstorm import SEEDS
from efficientbioai.deepstorm.data import PatchSet, normalisation_stats, simulate_patches, spike_targets
from efficientbioai.deepstorm.loss import deepstorm_loss
from efficientbioai.deepstorm.settings import DeepSTORMSection
from efficientbioai.errors import ConfigError
from efficientbioai.manifest import write_json
from efficientbioai.parsers.checkpoint import load_state_dict, save_checkpoint, training_output
from efficientbioai.smlm.settings import TrainSection

log = logging.getLogger(__name__)


def _batch(model, pool: PatchSet, idx: np.ndarray, spec: DeepSTORMSection):
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
            x, y, size = _batch(model, pool, idx, spec)
            loss, _ = deepstorm_loss(model(x)[..., :size, :size], y, spec.target_sigma_px, spec.l1_weight)
            total += float(loss) * len(idx)
    return total / len(pool)


def validation_scores(model, frames: np.ndarray, truth: np.ndarray, spec: DeepSTORMSection) -> dict[str, float]:
    """NMSE/PSNR of the summed reconstruction of a validation stack (the task's own metric)."""
    from efficientbioai.deepstorm.accumulate import sum_predictions
    from efficientbioai.deepstorm.stack import frame_batches
    from efficientbioai.engines.torch_engine import TorchModule

    model.eval()
    _, h, w = frames.shape
    m, u = model.multiple, model.upsample
    shape = (u * (h + (-h) % m), u * (w + (-w) % m))
    image = sum_predictions(TorchModule(model), frame_batches(frames, 16, m), shape)[: u * h, : u * w]
    from efficientbioai.deepstorm.metrics import reconstruction_scores

    return reconstruction_scores(image, truth, spec.metric_sigma_px)


@dataclass
class _Validation:
    """What training and fine-tuning are scored on: held-out patches (validation loss) and a
    simulated filament stack with its ground-truth image (NMSE / PSNR), all from the
    validation seeds."""

    pool: PatchSet
    frames: np.ndarray
    image: np.ndarray

    @classmethod
    def simulate(cls, sim, spec: DeepSTORMSection, frames: int, upsample: int) -> _Validation:
        from efficientbioai.deepstorm.filaments import simulate_filament_stack
        from efficientbioai.deepstorm.metrics import truth_image

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


def train_deepstorm(config: Config | str | Path, resume: bool = False, output: str | Path | None = None) -> Path:
    """Train the config's Deep-STORM model; returns the checkpoint path (best validation loss):
    ``output``, default a new file beside ``model.checkpoint``, which ``resume`` continues from."""
    from efficientbioai.compression.pipeline import create_parser

    cfg = config if isinstance(config, Config) else load_config(config)
    source = str(config) if not isinstance(config, Config) else "<config>.yaml"
    if cfg.simulation is None:
        raise ConfigError("training needs a 'simulation' section (the microscope to simulate)")
    settings, spec, sim = cfg.train or TrainSection(), cfg.deepstorm or DeepSTORMSection(), cfg.simulation
    parser = create_parser(cfg)
    if not hasattr(parser, "upsample"):
        raise ConfigError(f"model.parser {cfg.model.parser!r} is not a Deep-STORM parser; nothing was trained")
    out = training_output(cfg.model.checkpoint, output)
    ckpt = Path(cfg.model.checkpoint) if cfg.model.checkpoint else out
    if spec.train_threads:
        torch.set_num_threads(spec.train_threads)
    torch.manual_seed(settings.seed)
    model = parser.build_model(training=True)
    if spec.patch_size % model.multiple:
        raise ConfigError(
            f"deepstorm.patch_size {spec.patch_size} must be a multiple of {model.multiple} for the "
            f"{model.variant} variant (its poolings), e.g. {spec.patch_size + (-spec.patch_size) % model.multiple}: "
            "padded training patches teach the network edges that whole frames do not have"
        )
    if resume and ckpt.is_file():
        load_state_dict(model, ckpt)
    start = time.time()
    log.info("simulating %d training and %d validation patches", spec.patches, spec.validation_patches)
    pool = simulate_patches(sim, spec, spec.patches, SEEDS["train"] + 1_000_003 * settings.seed)
    validation = _Validation.simulate(sim, spec, settings.validation_frames, model.upsample)
    if not resume:
        mean, std = normalisation_stats(pool.inputs)
        model.norm_mean.fill_(mean)
        model.norm_std.fill_(std)
    stats = {"mean": float(model.norm_mean), "std": float(model.norm_std)}
    opt = torch.optim.Adam(model.parameters(), lr=settings.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, settings.lr_step, settings.lr_decay)
    rng = np.random.default_rng(settings.seed)
    order, cursor = rng.permutation(len(pool)), 0
    history: list[dict] = []
    best = float("inf")
    warmup = max(1, settings.steps // 10)  # L1 ramps up: from the start it drives the output to 0
    simulated = round(time.time() - start, 1)
    bar = tqdm(range(settings.steps), desc="training Deep-STORM", mininterval=2.0)
    for step in bar:
        if cursor + settings.batch_size > len(order):  # next epoch
            order, cursor = rng.permutation(len(pool)), 0
        idx = order[cursor : cursor + settings.batch_size]
        cursor += settings.batch_size
        model.train()
        x, y, size = _batch(model, pool, idx, spec)
        l1_weight = spec.l1_weight * min(1.0, (step + 1) / warmup)
        loss, parts = deepstorm_loss(model(x)[..., :size, :size], y, spec.target_sigma_px, l1_weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 10 == 0:
            bar.set_postfix(loss=f"{float(loss):.3f}", **{k: f"{v:.3f}" for k, v in parts.items()})
        if (step + 1) % settings.validation_every == 0 or step + 1 == settings.steps:
            val = {
                **validation.point(model, spec, step + 1, float(loss)),
                "lr": opt.param_groups[0]["lr"],
                "seconds": round(time.time() - start, 1),
            }
            history.append(val)
            log.info(
                "step %d: val loss %.4f, NMSE %.1f %%, PSNR %.2f dB",
                step + 1,
                val["val_loss"],
                val["nmse"],
                val["psnr"],
            )
            if val["val_loss"] < best:
                best = val["val_loss"]
                save_checkpoint(model.state_dict(), out)
            _save_record(out, source, settings, spec, stats, history, time.time() - start, simulated, resume, model)
    return out


def _save_record(out, source, settings, spec, stats, history, seconds, simulated, resume, model) -> None:
    best = min(history, key=lambda r: r["val_loss"])
    record = {
        "command": f"efficientbioai train --config {source}" + (" --resume" if resume else "") + f" --output {out}",
        "model": {"variant": model.variant, "width": model.width, "upsample": model.upsample},
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "train": settings.model_dump(),
        "deepstorm": spec.model_dump(),
        "normalisation": {
            **stats,
            "how": "per-frame min-max to [0, 1], then (x - mean) / std; buffers in the state_dict",
        },
        "kept_step": best["step"],
        "validation": history,
        "seconds": round(seconds, 1),
        "seconds_simulating": simulated,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    write_json(out.with_suffix(".json"), record)


def fine_tune_deepstorm(
    model: torch.nn.Module,
    sim,
    spec: DeepSTORMSection,
    steps: int,
    lr: float,
    batch_size: int,
    eval_every: int,
    validation_frames: int = 32,
) -> list[dict]:
    """Continue training a (pruned) deployed Deep-STORM model on freshly simulated patches with
    its own loss; returns the curve: training and validation loss, NMSE and PSNR of a summed
    validation filament stack every ``eval_every`` steps.

    The deployed model clips (and may sum frames) in its graph; the loss needs the linear
    per-frame output, so both are switched off while training and restored afterwards. The
    normalisation buffers are those of the original training set and stay as they are.
    """
    flags = model.sum_frames, model.clip
    model.sum_frames, model.clip = False, False
    try:
        pool = simulate_patches(sim, spec, min(spec.patches, steps * batch_size), SEEDS["train"] + 7_000_000)
        validation = _Validation.simulate(sim, spec, validation_frames, model.upsample)
        curve = [validation.point(model, spec, 0, None)]
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, steps))
        rng = np.random.default_rng(7)
        bar = tqdm(range(steps), desc="fine-tuning Deep-STORM", mininterval=2.0)
        for step in bar:
            model.train()
            x, y, size = _batch(model, pool, rng.choice(len(pool), batch_size, replace=False), spec)
            loss, _ = deepstorm_loss(model(x)[..., :size, :size], y, spec.target_sigma_px, spec.l1_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if (step + 1) % eval_every == 0 or step + 1 == steps:
                curve.append(validation.point(model, spec, step + 1, float(loss)))
                bar.set_postfix(nmse=curve[-1]["nmse"], psnr=curve[-1]["psnr"])
    finally:
        model.sum_frames, model.clip = flags
        model.eval()
    return curve
