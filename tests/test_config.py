from pathlib import Path

import pytest

from efficientbioai.config import load_config, parse_config
from efficientbioai.errors import ConfigError
from tests.helpers import TINY, write_config


def test_defaults_fill_every_section():
    cfg = parse_config({"model": {"parser": "monai_unet"}})
    assert cfg.engine.variant == "openvino:int8"
    assert cfg.export.opset >= 17
    assert "torch:fp32" in cfg.variants()


def test_unknown_key_names_key_file_and_allowed(tmp_path):
    path = write_config(tmp_path, {"model": {"parser": "monai_unet", "parmas": {}}})
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert "model.parmas" in msg and str(path) in msg and "params" in msg


def test_unknown_section(tmp_path):
    path = write_config(tmp_path, {"model": {"parser": "x"}, "quantise": {}})
    with pytest.raises(ConfigError, match="unknown key 'quantise'.*quantize"):
        load_config(path)


@pytest.mark.parametrize(
    "section, value, fragment",
    [
        ("inference", {"overlap": 1.5}, "inference.overlap"),
        ("inference", {"tile": [0, 64]}, "inference.tile"),
        ("export", {"opset": 11}, "export.opset"),
        ("inference", {"batch_size": "many"}, "inference.batch_size"),
        ("engine", {"name": "openvino", "precision": "fp16"}, "no precision 'fp16'"),
        ("report", {"compare": ["openvino:int4"]}, "report.compare"),
        ("data", {"calibration": {"source": "files"}}, "needs 'inputs'"),
        ("inference", {"localization": {"clip": 0.7, "threshold": 0.5}}, "localization.*must not exceed"),
        ("inference", {"localization": {"split": 1.5}}, "inference.localization.split"),
    ],
)
def test_impossible_values_are_named(section, value, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(")):
        parse_config({"model": {"parser": "monai_unet"}, section: value}, "x.yaml")


def test_missing_required_key():
    with pytest.raises(ConfigError, match="missing required key 'model'"):
        parse_config({}, "x.yaml")


def test_relative_paths_resolve_against_config_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    path = write_config(
        tmp_path / "sub", {"model": {"parser": "monai_unet", "checkpoint": "../w.pt"}, "inference": {"input": "imgs"}}
    )
    cfg = load_config(path)
    assert cfg.model.checkpoint == (tmp_path / "w.pt").resolve()
    assert cfg.inference.input == (tmp_path / "sub" / "imgs").resolve()


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    top = tmp_path / "list.yaml"
    top.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(top)


def test_bundled_configs_validate():
    for path in Path("configs").glob("*.yaml"):
        load_config(path)


def test_tiny_config_is_valid():
    assert parse_config(TINY).inference.tile == [64, 64]
