"""Train the bundled MONAI denoisers on synthetic fluorescence images.

The architecture comes from the same YAML the compressor reads (``model.params``), so the
checkpoint always matches its config. Images come from the ``train`` seed range; the loss
reported at the end is on the ``validation`` range; evaluation images are never touched.

    efficientbioai train-denoiser --config configs/monai_unet_denoise3d.yaml
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from efficientbioai.datasets.fluorescence import SEED_OFFSETS, make_pair
from efficientbioai.errors import ConfigError
from efficientbioai.manifest import write_json
from efficientbioai.parsers.checkpoint import save_checkpoint
from efficientbioai.registry import register_trainer
from efficientbioai.tasks.image_metrics import pearson
from efficientbioai.terminal import bar as progress_bar
from efficientbioai.training import start_training

log = logging.getLogger(__name__)

#: Per dimensionality: (training image shape, patch shape, batch size, pool size).
DEFAULTS = {2: ((256, 256), (128, 128), 8, 200), 3: ((32, 128, 128), (32, 64, 64), 2, 60)}


def _pool(parser, split: str, count: int, shape: tuple[int, ...]) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for i in progress_bar(range(count), desc=f"simulating {split} images", leave=False):
        noisy, clean = make_pair(shape, SEED_OFFSETS[split] + i)
        out.append((parser.preprocess(noisy[None])[0], clean))
    return out


def _batch(pool, patch, batch_size, rng) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for _ in range(batch_size):
        x, y = pool[int(rng.integers(len(pool)))]
        start = [int(rng.integers(0, s - p + 1)) for s, p in zip(x.shape, patch)]
        idx = tuple(slice(a, a + p) for a, p in zip(start, patch))
        x, y = x[idx], y[idx]
        for axis in range(x.ndim):
            if rng.random() < 0.5:
                x, y = np.flip(x, axis), np.flip(y, axis)
        xs.append(x.copy())
        ys.append(y.copy())
    return torch.from_numpy(np.stack(xs)[:, None]), torch.from_numpy(np.stack(ys)[:, None])


def train_denoiser(
    config_path: str | Path, steps: int = 1500, lr: float = 1e-3, seed: int = 0, output: str | Path | None = None
) -> Path:
    """Train the model of ``config_path``; write its checkpoint to ``output`` (default a new file
    beside ``model.checkpoint``)."""
    cfg, _, parser, out = start_training(config_path, output, "denoise", "a denoiser", simulated=False)
    dims = parser.spatial_dims
    image_shape, patch, batch_size, pool_size = DEFAULTS[dims]
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = parser.build_model().train()
    train_pool = _pool(parser, "train", pool_size, image_shape)
    val_pool = _pool(parser, "validation", max(4, pool_size // 20), image_shape)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    start = time.time()
    with progress_bar(range(steps), desc=f"training {dims}D denoiser") as bar:
        for step in bar:
            x, y = _batch(train_pool, patch, batch_size, rng)
            loss = torch.nn.functional.mse_loss(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if step % 20 == 0:
                bar.set_postfix(loss=f"{loss.item():.5f}")
    model.eval()
    with torch.no_grad():
        scores = [pearson(model(torch.from_numpy(x[None, None]))[0, 0].numpy(), y) for x, y in val_pool]
    save_checkpoint(model.state_dict(), out)
    info = {
        "command": f"efficientbioai train-denoiser --config {config_path} --steps {steps} --lr {lr} --seed {seed} "
        f"--output {out}",
        "steps": steps,
        "batch_size": batch_size,
        "patch": list(patch),
        "train_images": pool_size,
        "validation_pearson": round(float(np.mean(scores)), 4),
        "seconds": round(time.time() - start, 1),
        "torch": torch.__version__,
    }
    write_json(out.with_suffix(".json"), info)
    log.info("wrote %s (validation Pearson %.4f)", out, info["validation_pearson"])
    return out


@register_trainer("monai_unet")
def train(config_path: str | Path, resume: bool = False, output: str | Path | None = None) -> Path:
    """``efficientbioai train`` for a denoiser: :func:`train_denoiser` with its default steps."""
    if resume:
        raise ConfigError("--resume is not supported for denoisers; train-denoiser --steps N trains anew")
    return train_denoiser(config_path, output=output)
