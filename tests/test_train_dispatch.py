"""``train`` and ``train-denoiser`` refuse a family they do not train, before writing anything."""

from pathlib import Path

import yaml

from efficientbioai.cli import main

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def test_train_refuses_a_family_without_a_trainer(tmp_path, capsys):
    data = yaml.safe_load((CONFIGS / "monai_unet_denoise2d.yaml").read_text())
    data["model"] = {"parser": "tutorial.custom_model:TinyDenoiserParser"}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(data))
    assert main(["train", "--config", str(tmp_path / "c.yaml"), "--output", str(tmp_path / "x.pt")]) == 2
    err = capsys.readouterr().err
    assert "no trainer for model.parser 'tutorial.custom_model:TinyDenoiserParser'" in err
    assert "@register_trainer" in err and "dilatedloc" in err and not (tmp_path / "x.pt").exists()


def test_train_dispatches_each_family_to_its_own_trainer():
    from efficientbioai.registry import trainer_for
    from efficientbioai.training import cellpose, deepstorm, denoiser, dilatedloc

    assert trainer_for("monai_unet") is denoiser.train  # a denoiser config never starts DilatedLoc training
    assert trainer_for("dilatedloc") is dilatedloc.train_dilatedloc
    assert trainer_for("deepstorm") is deepstorm.train_deepstorm
    assert trainer_for("cellpose") is cellpose.train_cellpose


def test_train_denoiser_refuses_a_localizer_and_writes_nothing(tmp_path, capsys):
    data = yaml.safe_load((CONFIGS / "dilatedloc_gauss2d.yaml").read_text())
    data["model"]["checkpoint"] = str(tmp_path / "would_be_overwritten.pt")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(data))
    assert main(["train-denoiser", "--config", str(tmp_path / "c.yaml"), "--steps", "1"]) == 2
    assert "is a localize model, not a denoiser; nothing was trained" in capsys.readouterr().err
    assert not (tmp_path / "would_be_overwritten.pt").exists()


def test_every_trainer_refuses_another_familys_config(tmp_path):
    import pytest

    from efficientbioai.errors import ConfigError
    from efficientbioai.training.cellpose import train_cellpose
    from efficientbioai.training.deepstorm import train_deepstorm
    from efficientbioai.training.dilatedloc import train_dilatedloc

    data = yaml.safe_load((CONFIGS / "monai_unet_denoise2d.yaml").read_text())
    data["model"]["checkpoint"] = str(tmp_path / "x.pt")
    data["simulation"] = {}  # the SMLM trainers need it before they look at the model
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(data))
    for trainer in (train_cellpose, train_deepstorm, train_dilatedloc):
        with pytest.raises(ConfigError, match="nothing was trained"):
            trainer(tmp_path / "c.yaml", output=tmp_path / "out.pt")
    assert not (tmp_path / "out.pt").exists()


def test_failed_allocations_read_as_one_line():
    from efficientbioai.cli import user_message

    torch_oom = RuntimeError(
        "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory: "
        "you tried to allocate 42949672960 bytes."
    )
    assert "lower inference.tile" in user_message(torch_oom) and "42949672960" in user_message(torch_oom)
    assert "lower inference.tile" in user_message(MemoryError())
    assert user_message(RuntimeError("a bug in our code")) is None  # real bugs keep their traceback
