"""``train`` and ``train-denoiser`` refuse a family they do not train, before writing anything."""

from pathlib import Path

import yaml

from efficientbioai.cli import main

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def test_train_refuses_a_denoiser_instead_of_training_dilatedloc(capsys):
    assert main(["train", "--config", str(CONFIGS / "monai_unet_denoise2d.yaml")]) == 2
    err = capsys.readouterr().err
    assert "no trainer for model.parser 'monai_unet'" in err and "train-denoiser" in err


def test_train_denoiser_refuses_a_localizer_and_writes_nothing(tmp_path, capsys):
    data = yaml.safe_load((CONFIGS / "dilatedloc_gauss2d.yaml").read_text())
    data["model"]["checkpoint"] = str(tmp_path / "would_be_overwritten.pt")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(data))
    assert main(["train-denoiser", "--config", str(tmp_path / "c.yaml"), "--steps", "1"]) == 2
    assert "is a localize model; nothing was written" in capsys.readouterr().err
    assert not (tmp_path / "would_be_overwritten.pt").exists()
