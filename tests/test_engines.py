"""Every engine: numpy in, numpy out; dynamic batch and tile size; explicit precision."""

import numpy as np
import pytest
import torch

from efficientbioai.config import load_config
from efficientbioai.engines.factory import create_engine
from efficientbioai.errors import ArtefactError, BackendUnavailableError, ConfigError, InputError
from efficientbioai.parsers.base import create_parser
from efficientbioai.tasks.image_metrics import pearson

VARIANTS = ["torch:fp32", "onnxruntime:fp32", "onnxruntime:int8", "openvino:fp32", "openvino:int8"]


@pytest.fixture(scope="module")
def deploy(tiny_experiment):
    cfg = load_config(tiny_experiment / "deploy.yaml")
    return cfg, create_parser(cfg)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("shape", [(1, 1, 64, 64), (3, 1, 64, 64), (2, 1, 96, 128)])
def test_dynamic_batch_and_tile(deploy, variant, shape):
    cfg, parser = deploy
    engine = create_engine(variant, cfg, parser)
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    y = engine(x)
    assert isinstance(y, np.ndarray) and y.shape == shape and y.dtype == np.float32
    ref = create_engine("torch:fp32", cfg, parser)(x)
    if variant.endswith("fp32"):
        np.testing.assert_allclose(y, ref, atol=1e-4 * max(1.0, np.abs(ref).max()))
    else:  # int8 on uniform noise, far from the calibration data: close in shape, not in value
        assert pearson(y, ref) > 0.9


def test_engines_state_their_precision_and_threads(deploy):
    cfg, parser = deploy
    ov = create_engine("openvino:fp32", cfg, parser).describe()
    assert ov["inference_precision"] == "f32"  # set explicitly, never the CPU plugin's default
    assert ov["threads"] >= 1
    assert create_engine("onnxruntime:int8", cfg, parser).describe()["providers"] == ["CPUExecutionProvider"]


def test_openvino_async_stream_keeps_order(deploy):
    cfg, parser = deploy
    engine = create_engine("openvino:int8", cfg, parser)
    batches = [np.full((2, 1, 64, 64), i / 10, np.float32) for i in range(7)]
    streamed = list(engine.map_batches(iter(batches)))
    for b, s in zip(batches, streamed):
        np.testing.assert_allclose(s, engine(b), atol=1e-5)


def test_wrong_rank_is_refused(deploy):
    cfg, parser = deploy
    engine = create_engine("onnxruntime:fp32", cfg, parser)
    with pytest.raises(InputError, match="batch has 3 dims"):
        engine(np.zeros((1, 64, 64), np.float32))


def test_missing_artefact_and_unknown_variant(deploy, tmp_path):
    cfg, parser = deploy
    broken = cfg.model_copy(deep=True)
    broken.source_dir = tmp_path  # artefacts resolve against an empty folder
    with pytest.raises(ArtefactError, match="not found.*Run compress.py again"):
        create_engine("openvino:int8", broken, parser)
    with pytest.raises(ConfigError, match="no artefact for variant 'openvino:bf16'"):
        create_engine("openvino:bf16", cfg, parser)


def test_torch_reference_flushes_denormals():
    """Denormal activations would slow the fp32 reference (and so flatter every speed-up)."""
    from efficientbioai.engines.torch_engine import TorchModule

    TorchModule(torch.nn.Identity())
    assert (torch.tensor([1e-39]) * 1.0).item() == 0.0


@pytest.mark.parametrize("variant", ["torch:fp32", "onnxruntime:fp32", "openvino:fp32"])
def test_capabilities_the_runtime_uses(deploy, variant):
    """Device outputs, an executor with batches in flight (results by their meta), placement, release."""
    cfg, parser = deploy
    engine = create_engine(variant, cfg, parser)
    batches = [np.random.default_rng(i).random((2, 1, 64, 64), dtype=np.float32) for i in range(5)]
    outs = engine.device_outputs(batches[0])
    assert all(isinstance(o, torch.Tensor) for o in outs)
    assert engine.keeps_outputs_on_device == (variant == "torch:fp32")
    got: dict[int, list] = {}
    executor = engine.executor(lambda meta, o: got.__setitem__(meta, [t.clone() for t in o]), 3)
    for i, b in enumerate(batches):
        executor.submit(b, i)
    executor.drain()
    executor.close()
    assert sorted(got) == list(range(5))
    for i, b in enumerate(batches):
        np.testing.assert_allclose(
            got[i][0].cpu().numpy(), engine(b), rtol=0, atol=1e-6 * max(1.0, np.abs(engine(b)).max())
        )
    if variant == "torch:fp32":
        engine.move_to("cpu")
        assert str(engine.device) == "cpu"
    else:
        with pytest.raises(ConfigError, match="placed by engine settings"):
            engine.move_to("cuda:0")
    engine.release()


def test_int8_bf16_runs_the_int8_ir_with_its_float_layers_in_bf16(deploy, tmp_path, monkeypatch):
    """``openvino:int8-bf16`` is the int8 IR under the bf16 hint: built from it, never quantized again."""
    from efficientbioai.compression import build_experiment
    from efficientbioai.engines.openvino_engine import OPVModule

    cfg, parser = deploy
    int8_ir = cfg.artefact("openvino:int8")
    monkeypatch.setattr(build_experiment.QUANTIZERS, "get", lambda name: pytest.fail("quantized again"))
    built = build_experiment._build_variant("openvino:int8-bf16", cfg, parser, int8_ir.parent.parent, None, [])
    assert built == int8_ir
    try:
        mixed, bf16 = OPVModule(int8_ir, "int8-bf16"), OPVModule(cfg.artefact("openvino:fp32"), "bf16")
    except (ArtefactError, BackendUnavailableError):
        pytest.skip("this machine (or its ISA cap) has no bf16 kernels")
    # The plugin's precision for the float layers is what it uses for openvino:bf16 on this CPU.
    assert mixed.actual_precision == bf16.actual_precision
    assert OPVModule(int8_ir, "int8").actual_precision == "f32"


def test_bf16_under_an_isa_cap_is_refused_in_words(deploy, monkeypatch):
    """Under ONEDNN_MAX_CPU_ISA=AVX2 on a bf16 CPU the plugin still picks bf16 and then crashes
    (int8-bf16: a segfault that kills the process); the engine refuses before compiling."""
    from efficientbioai.engines import openvino_engine

    cfg, _ = deploy
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    for precision, variant in (("int8-bf16", "openvino:int8"), ("bf16", "openvino:fp32")):
        with pytest.raises(BackendUnavailableError, match="ONEDNN_MAX_CPU_ISA=AVX2 caps them away"):
            openvino_engine.OPVModule(cfg.artefact(variant), precision)
    assert openvino_engine.OPVModule(cfg.artefact("openvino:int8"), "int8").actual_precision == "f32"
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx512_core_amx")
    openvino_engine._refuse_capped_bf16("int8-bf16")  # a cap that keeps bf16: no refusal


def test_bf16_is_bf16_or_refused(deploy):
    """A bf16 variant never runs quietly in f32 (the plugin's fallback without bf16 kernels):
    either the plugin reports bf16, or the engine refuses in words, naming its f32 twin."""
    from efficientbioai.engines.openvino_engine import OPVModule

    cfg, _ = deploy
    for precision, variant in (("bf16", "openvino:fp32"), ("int8-bf16", "openvino:int8")):
        try:
            engine = OPVModule(cfg.artefact(variant), precision)
        except BackendUnavailableError as exc:
            assert ("needs bf16 kernels" in str(exc) and variant in str(exc)) or "caps them away" in str(exc)
        else:
            assert engine.actual_precision == "bf16"
