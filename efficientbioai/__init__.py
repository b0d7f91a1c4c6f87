"""EfficientBioAI: compress trained bioimaging networks (prune, int8), deploy them on
OpenVINO / ONNX Runtime / TensorRT, and measure latency, energy and accuracy against fp32."""

from efficientbioai.offline import disable_telemetry

disable_telemetry()

__version__ = "0.1.0"
