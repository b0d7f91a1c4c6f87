"""Tutorial: compress your own PyTorch model with a few lines.

Your network is any ``nn.Module``. Tell EfficientBioAI how to build it by subclassing
``BaseParser`` and overriding ``build_model``; name the class in the YAML as
``tutorial.custom_model:TinyDenoiserParser`` (any importable ``package.module:ClassName``).
Everything else — checkpoint loading, calibration crops, export, int8, engines, tiling,
metrics, report — comes from the base class and the config.

Run it from the repository root (about a minute on two cores):

    .venv/bin/python tutorial/custom_model.py

It writes a few noisy/clean TIFF pairs, trains the tiny network for a moment, saves its
state_dict, writes a config that points at your files, compresses, and prints the report.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

from efficientbioai.parsers.base import BaseParser


class TinyDenoiser(nn.Module):
    """Your own network: here a small residual conv net (2D, one channel in and out)."""

    def __init__(self, width: int = 16, depth: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(1, width, 3, padding=1), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
        layers.append(nn.Conv2d(width, 1, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - self.body(x)


class TinyDenoiserParser(BaseParser):
    """The only thing EfficientBioAI needs to know: how to build the network from the config."""

    def build_model(self) -> nn.Module:
        return TinyDenoiser(**self.params)


# --------------------------------------------------------------------------------------------
# The rest makes data and a trained checkpoint so the tutorial runs anywhere; with your own
# model you already have both and only need the YAML below.


def _make_data(folder: Path) -> None:
    from efficientbioai.datasets.fluorescence import SEED_OFFSETS, make_pair
    from efficientbioai.tasks.image_io import write_tiff

    for split, count in (("train", 16), ("calibration", 4), ("evaluation", 2)):
        for i in range(count):
            noisy, clean = make_pair((128, 128), SEED_OFFSETS[split] + i)
            write_tiff(folder / split / "noisy" / f"{i:03d}.tif", noisy)
            write_tiff(folder / split / "clean" / f"{i:03d}.tif", clean)


def _train(folder: Path, checkpoint: Path, steps: int = 150) -> None:
    from efficientbioai.tasks.image_io import list_images, read_image
    from efficientbioai.tasks.normalize import percentile_normalize

    xs = [percentile_normalize(read_image(p)) for p in list_images(folder / "train" / "noisy")]
    ys = [read_image(p) for p in list_images(folder / "train" / "clean")]
    x, y = torch.tensor(xs)[:, None], torch.tensor(ys)[:, None]
    model = TinyDenoiser()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(steps):
        idx = torch.randint(0, len(x), (4,))
        loss = nn.functional.mse_loss(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.save(model.state_dict(), checkpoint)


CONFIG = """\
model:
  parser: tutorial.custom_model:TinyDenoiserParser   # your class, as package.module:ClassName
  checkpoint: tiny_denoiser.pt                        # a state_dict; paths are relative to this file
  params: {{width: 16, depth: 4}}                     # passed to build_model via self.params
data:
  calibration: {{source: files, inputs: data/calibration/noisy, num_samples: 4}}
inference:
  task: denoise
  input: data/evaluation/noisy
  target: data/evaluation/clean
  tile: [64, 64]
report:
  compare: [torch:fp32, onnxruntime:int8, openvino:fp32, openvino:int8]
  latency: {{warmup: 2, runs: {runs}}}
  energy: {{enabled: {energy}}}
"""


def main(workdir: str = "out/tutorial", runs: int = 20, energy: bool = True) -> dict:
    from efficientbioai.compression.pipeline import compress
    from efficientbioai.run import run_inference

    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    _make_data(work / "data")
    _train(work / "data", work / "tiny_denoiser.pt")
    config = work / "tiny_denoiser.yaml"
    config.write_text(CONFIG.format(runs=runs, energy=str(energy).lower()))
    deploy = compress(config, work / "experiment", overwrite=True)
    return run_inference(deploy)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from efficientbioai.cli import print_report

    print_report(main())
