"""Simulated DilatedLoc batches with their truth, validation on a fixed stack, and fine-tuning.

The seed ranges keep the splits apart: training, validation, calibration, evaluation and the
precision test never share a simulated frame. ``efficientbioai train`` (its loop is in
:mod:`efficientbioai.training.dilatedloc`) and post-pruning fine-tuning both draw from here.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from efficientbioai.models.distillation import Distiller
from efficientbioai.smlm.localization_metrics import score_localizations
from efficientbioai.smlm.loss import dilatedloc_loss
from efficientbioai.smlm.postprocess import SpatialIntegration, dense_to_table
from efficientbioai.smlm.settings import SimulationSection
from efficientbioai.terminal import bar as progress_bar

log = logging.getLogger(__name__)

#: Seed ranges of the simulated splits.
SEEDS = {
    "train": 0,
    "validation": 10_000_000,
    "calibration": 20_000_000,
    "evaluation": 30_000_000,
    "precision": 40_000_000,  # the single-emitter CRLB test (smlm/precision.py)
}


def _blinking_window(sim: SimulationSection, frames: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Emitters ``(N, 4)`` (x, y, z nm, photons) for ``frames`` consecutive frames of one sample.

    Emitters are placed uniformly or, for a share ``sim.filament_fraction`` of samples, on
    filaments (``smlm/filaments.py``). They switch on at random times and stay on for a geometric
    number of frames with mean ``sim.blink_mean_frames`` (a burn-in before the window makes the
    state stationary); position and z are fixed while on, photons vary per frame. With one frame
    this is a plain draw.
    """
    shape = tuple(sim.frame_shape)
    density = rng.uniform(*sim.density_per_um2)
    points = sim.sample_layout(rng)
    if frames == 1:
        return [sim.layout_sampler(density, points).sample(shape, sim.pixel_size, rng)]
    mean_on = sim.blink_mean_frames
    burn_in = int(np.ceil(4 * mean_on))
    births = []
    for t in range(-burn_in, frames):
        em = sim.layout_sampler(density / mean_on, points).sample(shape, sim.pixel_size, rng)  # new this frame
        life = rng.geometric(1.0 / mean_on, len(em))
        births.append((t, em, life))
    window = []
    for t in range(frames):
        alive = [em[(t >= start) & (t < start + life)] for start, em, life in births]
        em = np.concatenate(alive) if alive else np.zeros((0, 4))
        em[:, 3] = rng.uniform(*sim.photons, len(em))  # a fresh photon count every frame
        window.append(em)
    return window


def simulate_blinking_stack(sim: SimulationSection, n_frames: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A stack of consecutive frames of blinking emitters and its ground truth table
    (``frame`` 1-based, x, y, z in nm, photons) — the evaluation data for temporal context."""
    rng = np.random.default_rng(seed)
    psf, camera = sim.psf.build(), sim.camera.build()
    shape = tuple(sim.frame_shape)
    window = _blinking_window(sim, n_frames, rng)
    background = rng.uniform(*sim.background)
    frames = np.stack(
        [camera.forward(psf.render(em[:, :3], em[:, 3], shape, sim.pixel_size) + background, rng) for em in window]
    )
    truth = np.concatenate([np.column_stack([np.full(len(em), t + 1.0), em]) for t, em in enumerate(window)])
    return frames.astype(np.float32), truth


def simulate_batch(
    sim: SimulationSection, batch: int, seed: int, frames: int = 1, cameras: list | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``frames (B, F, H, W)`` in ADU, ``truth (B, M, 4)`` (x, y in px; z nm; photons), ``mask (B, M)``.

    Density, background and per-emitter values are drawn per sample from the configured ranges.
    With ``frames = 3`` each sample is three consecutive frames of blinking emitters and the truth
    is the middle frame's (DilatedLoc's temporal context). With ``cameras`` (a list of
    :class:`~efficientbioai.smlm.camera.Camera`) the same emitters are recorded by each camera,
    with noise of its own, and ``frames`` is ``(K, B, F, H, W)``: the camera experiments.
    """
    rng = np.random.default_rng(seed)
    psf = sim.psf.build()
    recorders = cameras or [sim.camera.build()]
    noise = [np.random.default_rng([seed, k + 1]) for k in range(len(recorders))] if cameras else [rng]
    shape = tuple(sim.frame_shape)
    out = np.empty((len(recorders), batch, frames, *shape), np.float32)
    emitters = []
    for b in range(batch):
        window = _blinking_window(sim, frames, rng)
        background = rng.uniform(*sim.background)
        for f, em in enumerate(window):
            expected = psf.render(em[:, :3], em[:, 3], shape, sim.pixel_size) + background
            for k, camera in enumerate(recorders):
                out[k, b, f] = camera.forward(expected, noise[k])
        emitters.append(window[frames // 2])
    out = out if cameras else out[0]
    m = max(1, max(len(e) for e in emitters))
    truth = np.zeros((batch, m, 4), np.float32)
    mask = np.zeros((batch, m), bool)
    for b, em in enumerate(emitters):
        truth[b, : len(em)] = np.column_stack([em[:, 0] / sim.pixel_size, em[:, 1] / sim.pixel_size, em[:, 2:4]])
        mask[b, : len(em)] = True
    return out, truth, mask


def truth_table(truth: np.ndarray, mask: np.ndarray, pixel_size: float, first_frame: int = 1) -> np.ndarray:
    """Padded batch ground truth → table ``frame, x, y, z (nm), photons``."""
    b, m = np.nonzero(mask)
    t = truth[b, m]
    return np.column_stack([b + first_frame, t[:, 0] * pixel_size, t[:, 1] * pixel_size, t[:, 2], t[:, 3]])


def validate(
    model: torch.nn.Module,
    sim: SimulationSection,
    n: int,
    batch: int = 16,
    frames: int = 1,
    post: SpatialIntegration | None = None,
) -> dict:
    """Jaccard, RMSE and efficiency of ``model`` on a fixed simulated validation stack."""
    post = post or SpatialIntegration(sim.pixel_size)
    preds, truths = [], []
    model.eval()
    with torch.no_grad():
        for start in range(0, n, batch):
            size = min(batch, n - start)
            x, t, m = simulate_batch(sim, size, SEEDS["validation"] + start, frames=frames)
            preds.append(dense_to_table(post(model(torch.from_numpy(x))), first_frame=start + 1))
            truths.append(truth_table(t, m, sim.pixel_size, first_frame=start + 1))
    score = score_localizations(np.concatenate(preds), np.concatenate(truths))
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in score.as_dict().items()}


def taylor_loss(sim: SimulationSection, frames: int = 1, batch: int = 32):
    """``loss(model)``: the DilatedLoc loss on one fixed batch of simulated training frames, for
    Taylor channel importance (|weight x gradient|). The seeds lie before the fine-tuning range,
    in the training split, so importance never sees validation or calibration frames."""
    x, t, m = (torch.from_numpy(a) for a in simulate_batch(sim, batch, SEEDS["train"] + 4_999_000, frames=frames))

    def loss(model: torch.nn.Module) -> torch.Tensor:
        return dilatedloc_loss(model(x), t, m, float(model.z_scale), float(model.photon_scale))[0]

    return loss


def fine_tune_dilatedloc(
    model: torch.nn.Module, sim: SimulationSection, settings, teacher: torch.nn.Module | None = None
) -> list[dict]:
    """Continue training ``model`` (e.g. after pruning) on fresh simulated frames with the
    DilatedLoc loss plus, with a ``teacher`` (the unpruned model), distillation of its output
    maps and features (``settings.distill_outputs`` / ``distill_features``), the learning rate
    cosine-annealed to zero; returns the curve (loss, validation Jaccard and RMSE every
    ``settings.eval_every``). ``settings`` is a :class:`~efficientbioai.config.FineTuneSection`."""
    torch.set_flush_denormal(True)
    steps, batch_size, eval_every = settings.steps, settings.batch_size, settings.eval_every
    z_scale, photon_scale = float(model.z_scale), float(model.photon_scale)
    frames = model.frames
    distiller = None
    if teacher is not None:
        example = torch.from_numpy(simulate_batch(sim, 1, SEEDS["train"] + 4_999_999, frames=frames)[0])
        distiller = Distiller(model, teacher, example, settings.distill_outputs, settings.distill_features)
    extra = list(distiller.parameters()) if distiller is not None else []
    opt = torch.optim.NAdam([*model.parameters(), *extra], lr=settings.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)  # recovery first, then annealing
    curve = [{"step": 0, "train_loss": None, **_curve_point(model, sim, frames)}]
    bar = progress_bar(range(steps), desc="fine-tuning DilatedLoc", mininterval=2.0)
    for step in bar:
        model.train()
        # seeds after the training range of train_dilatedloc's defaults, so batches are new
        x, t, m = simulate_batch(sim, batch_size, SEEDS["train"] + 5_000_000 + step, frames=frames)
        x = torch.from_numpy(x)
        out = model(x)
        loss, _ = dilatedloc_loss(out, torch.from_numpy(t), torch.from_numpy(m), z_scale, photon_scale)
        if distiller is not None:
            loss = loss + distiller.loss(x, out)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 30.0)
        opt.step()
        sched.step()
        if (step + 1) % eval_every == 0 or step + 1 == steps:
            curve.append({"step": step + 1, "train_loss": round(loss.item(), 3), **_curve_point(model, sim, frames)})
            bar.set_postfix(jaccard=curve[-1]["jaccard"])
    if distiller is not None:
        distiller.close()
    model.eval()
    return curve


def _curve_point(model: torch.nn.Module, sim: SimulationSection, frames: int) -> dict:
    val = validate(model, sim, 16, frames=frames)
    return {"jaccard": val["jaccard"], "rmse_lateral": val["rmse_lateral"], "rmse_axial": val["rmse_axial"]}
