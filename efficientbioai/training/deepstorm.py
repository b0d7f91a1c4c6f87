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
``train.validation_frames`` frames) go to the log and the record.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from efficientbioai.config import Config
from efficientbioai.deepstorm import SEEDS
from efficientbioai.deepstorm.data import normalisation_stats, simulate_patches
from efficientbioai.deepstorm.loss import deepstorm_loss
from efficientbioai.deepstorm.settings import DeepSTORMSection
from efficientbioai.deepstorm.simulated_training import ValidationSet, patch_batch
from efficientbioai.errors import ConfigError
from efficientbioai.manifest import write_json
from efficientbioai.parsers.checkpoint import load_state_dict, save_checkpoint
from efficientbioai.registry import register_trainer
from efficientbioai.smlm.settings import TrainSection
from efficientbioai.terminal import bar as progress_bar
from efficientbioai.training import start_training, train_command

log = logging.getLogger(__name__)


@register_trainer("deepstorm")
def train_deepstorm(config: Config | str | Path, resume: bool = False, output: str | Path | None = None) -> Path:
    """Train the config's Deep-STORM model; returns the checkpoint path (best validation loss):
    ``output``, default a new file beside ``model.checkpoint``, which ``resume`` continues from."""
    cfg, source, parser, out = start_training(config, output, "reconstruct", "a Deep-STORM model", simulated=True)
    settings, spec, sim = cfg.train or TrainSection(), cfg.deepstorm or DeepSTORMSection(), cfg.simulation
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
    validation = ValidationSet.simulate(sim, spec, settings.validation_frames, model.upsample)
    if not resume:
        mean, std = normalisation_stats(pool.inputs)
        model.norm_mean.fill_(mean)
        model.norm_std.fill_(std)
    head = {
        "command": train_command(source, out, resume),
        "model": {"variant": model.variant, "width": model.width, "upsample": model.upsample},
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "train": settings.model_dump(),
        "deepstorm": spec.model_dump(),
        "normalisation": {
            "mean": float(model.norm_mean),
            "std": float(model.norm_std),
            "how": "per-frame min-max to [0, 1], then (x - mean) / std; buffers in the state_dict",
        },
    }
    opt = torch.optim.Adam(model.parameters(), lr=settings.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, settings.lr_step, settings.lr_decay)
    rng = np.random.default_rng(settings.seed)
    order, cursor = rng.permutation(len(pool)), 0
    history, best = [], float("inf")
    warmup = max(1, settings.steps // 10)  # L1 ramps up: from the start it drives the output to 0
    simulated = round(time.time() - start, 1)
    bar = progress_bar(range(settings.steps), desc="training Deep-STORM", mininterval=2.0)
    for step in bar:
        if cursor + settings.batch_size > len(order):  # next epoch
            order, cursor = rng.permutation(len(pool)), 0
        idx = order[cursor : cursor + settings.batch_size]
        cursor += settings.batch_size
        model.train()
        x, y, size = patch_batch(model, pool, idx, spec)
        l1_weight = spec.l1_weight * min(1.0, (step + 1) / warmup)
        loss, parts = deepstorm_loss(model(x)[..., :size, :size], y, spec.target_sigma_px, l1_weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 10 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}", **{k: f"{v:.3f}" for k, v in parts.items()})
        if (step + 1) % settings.validation_every == 0 or step + 1 == settings.steps:
            val = {
                **validation.point(model, spec, step + 1, loss.item()),
                "lr": opt.param_groups[0]["lr"],
                "seconds": round(time.time() - start, 1),
            }
            history.append(val)
            log.info("step %(step)d: val loss %(val_loss).4f, NMSE %(nmse).1f %%, PSNR %(psnr).2f dB", val)
            if val["val_loss"] < best:
                best = val["val_loss"]
                save_checkpoint(model.state_dict(), out)
            record = {
                **head,
                "kept_step": min(history, key=lambda r: r["val_loss"])["step"],
                "validation": history,
                "seconds": round(time.time() - start, 1),
                "seconds_simulating": simulated,
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
            }
            write_json(out.with_suffix(".json"), record)
    return out
