import pytest

from efficientbioai.errors import ConfigError
from efficientbioai.registry import ENGINES, PARSERS, Registry


def test_register_and_get():
    reg = Registry("thing")

    @reg.register("a")
    class A:
        pass

    assert reg.get("a") is A
    assert reg.names() == ["a"]


def test_unknown_name_lists_available_and_plugin_form():
    with pytest.raises(ConfigError) as err:
        PARSERS.get("no_such_parser")
    assert "monai_unet" in str(err.value) and "package.module:ClassName" in str(err.value)


def test_builtins_load_lazily():
    from efficientbioai.engines.ort_engine import ORTModule

    assert ENGINES.get("onnxruntime") is ORTModule


def test_plugin_path():
    assert PARSERS.get("tutorial.custom_model:TinyDenoiserParser").__name__ == "TinyDenoiserParser"
    with pytest.raises(ConfigError, match="cannot import module"):
        PARSERS.get("no_such_pkg.mod:Cls")
    with pytest.raises(ConfigError, match="has no 'Missing'"):
        PARSERS.get("efficientbioai.config:Missing")
    with pytest.raises(ConfigError, match="must look like"):
        PARSERS.get(":Cls")
