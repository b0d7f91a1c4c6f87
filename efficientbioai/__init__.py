"""EfficientBioAI: compress trained bioimaging networks (prune, int8), deploy them on
OpenVINO / ONNX Runtime / TensorRT, and measure latency, energy and accuracy against fp32.

    import efficientbioai
    exp = efficientbioai.compress(config="configs/monai_unet_denoise2d.yaml", exp_path="out/den2d")
    report = efficientbioai.infer(exp, images="my_images/")
    engine = efficientbioai.load_engine(exp, "openvino:int8")

The names below load on first use, so ``import efficientbioai`` stays light.
"""

from importlib import import_module

from efficientbioai.offline import disable_telemetry

disable_telemetry()

__version__ = "0.1.0"

_EXPORTS = {
    "compress": "efficientbioai.api",
    "infer": "efficientbioai.api",
    "load_engine": "efficientbioai.api",
    "Experiment": "efficientbioai.api",
    "Report": "efficientbioai.evaluation.report",
    "BaseParser": "efficientbioai.parsers.base",
    "BaseInfer": "efficientbioai.engines.base",
    "TorchModule": "efficientbioai.engines.torch_engine",
    "ORTModule": "efficientbioai.engines.ort_engine",
    "OPVModule": "efficientbioai.engines.openvino_engine",
    "TRTModule": "efficientbioai.engines.tensorrt_engine",
    "register_parser": "efficientbioai.registry",
    "register_trainer": "efficientbioai.registry",
    "register_section": "efficientbioai.registry",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'efficientbioai' has no attribute {name!r}")
