"""Train DilatedLoc on frames simulated on the fly from the config's ``simulation`` section.

    efficientbioai train --config configs/dilatedloc_astig3d.yaml

Every step draws a fresh batch (seeds from the ``train`` range); every ``validation_every``
steps the model localizes a fixed validation stack (its own seed range, never the evaluation
stack), and the checkpoint and its record are written.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import torch

from efficientbioai.config import Config
from efficientbioai.manifest import write_json
from efficientbioai.parsers.checkpoint import save_checkpoint
from efficientbioai.registry import register_trainer
from efficientbioai.smlm.loss import dilatedloc_loss
from efficientbioai.smlm.postprocess import SpatialIntegration
from efficientbioai.smlm.settings import TrainSection
from efficientbioai.smlm.simulated_training import SEEDS, simulate_batch, validate
from efficientbioai.terminal import bar as progress_bar
from efficientbioai.training import start_training, train_command

log = logging.getLogger(__name__)


@register_trainer("dilatedloc")
def train_dilatedloc(config: Config | str | Path, resume: bool = False, output: str | Path | None = None) -> Path:
    """Train the config's model; returns the checkpoint path (``output``, default a new file beside
    ``model.checkpoint``). ``resume`` continues from ``model.checkpoint`` and its record."""
    cfg, source, parser, out = start_training(config, output, "localize", "a DilatedLoc model", simulated=True)
    settings, sim = cfg.train or TrainSection(), cfg.simulation
    ckpt = Path(cfg.model.checkpoint) if cfg.model.checkpoint else out
    torch.manual_seed(settings.seed)
    torch.set_flush_denormal(True)  # denormal activations slow every op (see engines/torch_engine.py)
    model = parser.load_model() if resume and ckpt.is_file() else parser.build_model()
    earlier = ckpt.with_suffix(".json")
    # a resumed run keeps the record of the run it continued (the provenance of the weights)
    resumed = {"resumed_from": json.loads(earlier.read_text())} if resume and earlier.is_file() else {}
    record = out.with_suffix(".json")
    head = {
        "command": train_command(source, out, resume),
        "train": settings.model_dump(),
        "parameters": int(sum(p.numel() for p in model.parameters())),
    }
    opt = torch.optim.NAdam(model.parameters(), lr=settings.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, settings.lr_step, settings.lr_decay)
    z_scale, photon_scale = float(model.z_scale), float(model.photon_scale)
    post = SpatialIntegration.from_settings(cfg.inference.localization, sim.pixel_size)
    history, start = [], time.time()
    bar = progress_bar(range(settings.steps), desc="training DilatedLoc", mininterval=2.0)
    for step in bar:
        model.train()
        x, t, m = simulate_batch(
            sim, settings.batch_size, SEEDS["train"] + settings.seed * 1_000_003 + step, frames=model.frames
        )
        loss, parts = dilatedloc_loss(
            model(torch.from_numpy(x)), torch.from_numpy(t), torch.from_numpy(m), z_scale, photon_scale
        )
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.03 * 1000)
        opt.step()
        sched.step()
        if step % 10 == 0:
            bar.set_postfix(loss=f"{loss.item():.1f}", **{k: f"{v:.1f}" for k, v in parts.items()})
        if (step + 1) % settings.validation_every == 0 or step + 1 == settings.steps:
            val = validate(model, sim, settings.validation_frames, frames=model.frames, post=post)
            val.update(step=step + 1, loss=round(loss.item(), 3))
            history.append(val)
            log.info(
                "step %(step)d: Jaccard %(jaccard).3f, RMSE lateral %(rmse_lateral).1f nm, axial %(rmse_axial).1f nm",
                val,
            )
            save_checkpoint(model.state_dict(), out)
            seconds = round(time.time() - start, 1)
            write_json(
                record, {**head, "validation": history, "seconds": seconds, "torch": torch.__version__, **resumed}
            )
    return out
