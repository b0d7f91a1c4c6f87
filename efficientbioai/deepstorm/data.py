"""Training data as Deep-STORM makes it: random patches of simulated high-density frames with
spike targets on the fine grid.

Deep-STORM (``GenerateTrainingExamples.m``) simulates frames with uniformly placed emitters,
cuts random 26×26 patches (upsampled ×8 to 208×208), skips patches with fewer than 7 emitters,
and labels each with the emitters as spikes on the 12.5 nm grid convolved with a 7×7 Gaussian
(σ = 1 fine pixel), ×100. Here the upsampling happens inside the network, so a patch is kept at
camera resolution (a few MB for thousands of patches) and the targets are drawn per batch from
the stored positions. Spikes go to the fine pixel that contains the emitter (``floor``);
Deep-STORM's MATLAB ``round`` puts them half a fine pixel off.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from efficientbioai.deepstorm.kernel import torch_blur
from efficientbioai.deepstorm.settings import DeepSTORMSection
from efficientbioai.errors import ConfigError
from efficientbioai.smlm.settings import SimulationSection
from efficientbioai.smlm.simulate import simulate_stack

log = logging.getLogger(__name__)


@dataclass
class PatchSet:
    """Raw patches ``(N, p, p)`` in ADU and, per patch, emitter positions ``(k, 2)`` (x, y nm in the patch)."""

    inputs: np.ndarray
    positions: list[np.ndarray]
    pixel_size: float

    def __len__(self) -> int:
        return len(self.inputs)


def simulate_patches(sim: SimulationSection, spec: DeepSTORMSection, n: int, seed: int) -> PatchSet:
    """``n`` random patches of ``spec.patch_size`` camera pixels with at least ``spec.min_emitters`` emitters.

    Frames of ``sim.frame_shape`` are simulated one at a time (density, background and photons
    drawn from ``sim``'s ranges) and ``spec.patches_per_frame`` crops, aligned to camera pixels,
    are tried on each.
    """
    p = spec.patch_size
    shape = tuple(sim.frame_shape)
    if min(shape) < p:
        raise ConfigError(f"deepstorm.patch_size {p} is larger than simulation.frame_shape {list(shape)}")
    rng = np.random.default_rng(seed)
    psf, camera = sim.psf.build(), sim.camera.build()
    inputs, positions = [], []
    frames_tried, max_frames = 0, 50 * (n // spec.patches_per_frame + 1)
    while len(inputs) < n:
        if frames_tried >= max_frames:
            raise ConfigError(
                f"only {len(inputs)} of {n} patches had ≥ {spec.min_emitters} emitters after {frames_tried} "
                "frames: raise simulation.density_per_um2 or lower deepstorm.min_emitters"
            )
        frames_tried += 1
        density = rng.uniform(*sim.density_per_um2)
        frame, truth = simulate_stack(
            1,
            shape,
            sim.pixel_size,
            psf,
            sim.sampler(density),
            tuple(sim.background),
            camera,
            seed=int(rng.integers(2**31)),
        )
        for _ in range(spec.patches_per_frame):
            r, c = (int(rng.integers(0, s - p + 1)) for s in shape)
            x = truth[:, 1] - c * sim.pixel_size
            y = truth[:, 2] - r * sim.pixel_size
            inside = (x >= 0) & (x < p * sim.pixel_size) & (y >= 0) & (y < p * sim.pixel_size)
            if inside.sum() < spec.min_emitters:
                continue
            inputs.append(frame[0, r : r + p, c : c + p])
            positions.append(np.column_stack([x[inside], y[inside]]))
            if len(inputs) == n:
                break
    log.debug("%d patches from %d frames", n, frames_tried)
    return PatchSet(np.stack(inputs).astype(np.float32), positions, sim.pixel_size)


def normalisation_stats(inputs: np.ndarray) -> tuple[float, float]:
    """Deep-STORM's dataset statistics: each patch min-max scaled to [0, 1], then the mean of
    the per-patch means and the mean of the per-patch standard deviations.

    Examples
    --------
    >>> mean, std = normalisation_stats(np.array([[[0.0, 1.0]], [[2.0, 4.0]]]))
    >>> mean, std
    (0.5, 0.5)
    """
    x = np.asarray(inputs, np.float64).reshape(len(inputs), -1)
    lo, hi = x.min(1, keepdims=True), x.max(1, keepdims=True)
    x = (x - lo) / np.maximum(hi - lo, 1e-6)
    return float(x.mean(1).mean()), float(x.std(1).mean())


def spike_targets(
    positions: list[np.ndarray], size: int, fine_pixel: float, sigma_px: float, scale: float
) -> torch.Tensor:
    """Targets ``(B, 1, size, size)``: emitters counted in their fine pixel, ⊛ Gaussian(``sigma_px``), × ``scale``."""
    spikes = torch.zeros(len(positions), 1, size, size)
    for b, xy in enumerate(positions):
        if len(xy) == 0:
            continue
        idx = np.clip(np.floor(np.asarray(xy) / fine_pixel).astype(np.int64), 0, size - 1)
        flat = torch.from_numpy(idx[:, 1] * size + idx[:, 0])
        spikes[b, 0].view(-1).index_add_(0, flat, torch.ones(len(flat)))
    return scale * torch_blur(spikes, sigma_px)


def pad_frames(x: np.ndarray, multiple: int) -> np.ndarray:
    """Pad the last two axes at the bottom/right (edge values) to a multiple of ``multiple``.

    Edge padding leaves each frame's min and max, hence its normalisation, unchanged; the
    caller crops the output back to ``upsample ×`` the original size.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if not ph and not pw:
        return x
    pad = [(0, 0)] * (x.ndim - 2) + [(0, ph), (0, pw)]
    return np.pad(x, pad, mode="edge")
