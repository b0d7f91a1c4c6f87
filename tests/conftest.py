"""Shared fixtures: a tiny 2D MONAI UNet experiment compressed once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import TINY, write_config


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A tiny UNet trained for a few steps, so outputs are image-like rather than random."""
    import torch

    from efficientbioai.config import parse_config
    from efficientbioai.parsers.monai_unet import MonaiUNetParser
    from efficientbioai.training.denoiser import _batch, _pool

    torch.manual_seed(0)
    import numpy as np

    parser = MonaiUNetParser(parse_config(TINY))
    model = parser.build_model().train()
    pool = _pool(parser, "train", 8, (64, 64))
    rng = np.random.default_rng(0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(200):
        x, y = _batch(pool, (64, 64), 8, rng)
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    torch.save(model.eval().state_dict(), path)
    return path


@pytest.fixture(scope="session")
def tiny_config(tmp_path_factory, tiny_checkpoint) -> Path:
    data = {**TINY, "model": {**TINY["model"], "checkpoint": str(tiny_checkpoint)}}
    return write_config(tmp_path_factory.mktemp("cfg"), data)


@pytest.fixture(scope="session")
def tiny_experiment(tmp_path_factory, tiny_config) -> Path:
    """``compress`` run once on the tiny config; returns the experiment folder."""
    from efficientbioai.compression.build_experiment import compress

    exp = tmp_path_factory.mktemp("exp") / "tiny"
    compress(tiny_config, exp)
    return exp


@pytest.fixture(scope="session")
def tiny_report(tiny_experiment) -> dict:
    from efficientbioai.api.infer import run_inference

    return run_inference(tiny_experiment / "deploy.yaml")


def pytest_terminal_summary(terminalreporter) -> None:
    """The CPU, its ISA features and any ISA cap: a numerics failure is read against them."""
    from efficientbioai.evaluation.report import describe_machine
    from efficientbioai.manifest import machine

    terminalreporter.write_line(f"machine: {describe_machine(machine())}")
