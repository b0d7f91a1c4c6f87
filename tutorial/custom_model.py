"""Tutorial: compress your own PyTorch model, three ways.

1. **Python, no parser**: pass the ``nn.Module`` and a small dict to ``efficientbioai.compress``.
2. **YAML, no parser**: name the class as ``model: {target: package.module:Class, kwargs: ...}``.
3. **A parser**: subclass ``BaseParser`` when your model needs its own data, normalisation,
   layers kept in float, or metrics; name it as ``model: {parser: package.module:Class}``.

Everything else — checkpoint loading, calibration crops, export, int8, engines, tiling,
metrics, report — comes from the toolbox and the config. Run it from the repository root
(about a minute per way on two cores):

    .venv/bin/python tutorial/custom_model.py [python|yaml|parser]

It writes a few noisy/clean TIFF pairs, trains the tiny network for a moment, saves its
state_dict, compresses it the chosen way, and prints the report.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

import efficientbioai
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


# --------------------------------------------------------------------------------------------
# Data and a trained checkpoint, so the tutorial runs anywhere; with your own model you
# already have both and need only one of the three ways below.


def _make_data(folder: Path) -> None:
    from efficientbioai.datasets.fluorescence import SEED_OFFSETS, make_pair
    from efficientbioai.io.images import write_tiff

    for split, count in (("train", 16), ("calibration", 4), ("evaluation", 2)):
        for i in range(count):
            noisy, clean = make_pair((128, 128), SEED_OFFSETS[split] + i)
            write_tiff(folder / split / "noisy" / f"{i:03d}.tif", noisy)
            write_tiff(folder / split / "clean" / f"{i:03d}.tif", clean)


def _train(folder: Path, checkpoint: Path, steps: int = 150) -> nn.Module:
    from efficientbioai.io.images import list_images, read_image
    from efficientbioai.io.intensity import percentile_normalize

    xs = [percentile_normalize(read_image(p)) for p in list_images(folder / "train" / "noisy")]
    ys = [read_image(p) for p in list_images(folder / "train" / "clean")]
    x, y = torch.tensor(xs)[:, None], torch.tensor(ys)[:, None]
    torch.manual_seed(0)  # the same network every run
    model = TinyDenoiser()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(steps):
        idx = torch.randint(0, len(x), (4,))
        loss = nn.functional.mse_loss(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.save(model.state_dict(), checkpoint)
    return model.eval()


# --------------------------------------------------------------------------------------------
# The three ways. Each compresses the trained network and runs the variants on the evaluation
# images; the settings are the same, only how the model is named differs.


def settings(work: Path, runs: int = 20, energy: bool = True) -> dict:
    """What to calibrate on, what to run and compare: the same for the three ways."""
    data = work / "data"
    return {
        "data": {"calibration": {"source": "files", "inputs": str(data / "calibration/noisy"), "num_samples": 4}},
        "inference": {
            "task": "denoise",
            "input": str(data / "evaluation/noisy"),
            "target": str(data / "evaluation/clean"),
            "tile": [64, 64],
        },
        "report": {
            "compare": ["torch:fp32", "onnxruntime:int8", "openvino:fp32", "openvino:int8"],
            "latency": {"warmup": 2, "runs": runs},
            "energy": {"enabled": energy},
        },
    }


def way_1_python(work: Path, net: nn.Module, config: dict) -> efficientbioai.Report:
    """The module object and a dict: nothing to write but these lines."""
    exp = efficientbioai.compress(config, model=net, exp_path=work / "exp_python", overwrite=True)
    engine = efficientbioai.load_engine(exp, "openvino:int8")  # or any variant in exp.variants
    print("raw int8 output of one tile:", engine(torch.rand(1, 1, 64, 64).numpy()).shape)
    return efficientbioai.infer(exp)  # or infer(exp, images=[array, ...]) for new images


YAML = """\
model:
  target: tutorial.custom_model:TinyDenoiser   # any nn.Module, as package.module:ClassName
  kwargs: {width: 16, depth: 4}                # its constructor arguments
  checkpoint: tiny_denoiser.pt                 # a state_dict; paths are relative to this file
"""


def way_2_yaml(work: Path, config: dict) -> efficientbioai.Report:
    """The same in a config file: the class by name, its arguments and its weights."""
    import yaml

    path = work / "tiny_denoiser_target.yaml"
    path.write_text(YAML + yaml.safe_dump(config, sort_keys=False))
    exp = efficientbioai.compress(path, exp_path=work / "exp_yaml", overwrite=True)
    return efficientbioai.infer(exp)  # = python efficientbioai/inference.py --config <exp>/deploy.yaml


class TinyDenoiserParser(BaseParser):
    """A parser, for what a plain module cannot say: here only how to build the network, but
    also your own synthetic data, normalisation, layers kept in float or pruning protection."""

    def build_model(self) -> nn.Module:
        return TinyDenoiser(**self.params)


def way_3_parser(work: Path, config: dict) -> efficientbioai.Report:
    """A ``BaseParser`` subclass named in the config (the CLI scripts take the same file)."""
    import yaml

    model = {"parser": "tutorial.custom_model:TinyDenoiserParser", "checkpoint": "tiny_denoiser.pt"}
    path = work / "tiny_denoiser_parser.yaml"
    path.write_text(yaml.safe_dump({"model": {**model, "params": {"width": 16, "depth": 4}}, **config}))
    exp = efficientbioai.compress(path, exp_path=work / "exp_parser", overwrite=True)
    return efficientbioai.infer(exp)


def main(workdir: str = "out/tutorial", way: str = "python", runs: int = 20, energy: bool = True):
    work = Path(workdir).resolve()
    _make_data(work / "data")
    net = _train(work / "data", work / "tiny_denoiser.pt")
    config = settings(work, runs, energy)
    if way == "python":
        return way_1_python(work, net, config)
    return way_2_yaml(work, config) if way == "yaml" else way_3_parser(work, config)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main(way=sys.argv[1] if len(sys.argv) > 1 else "python").print()
