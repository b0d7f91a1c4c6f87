"""``ORTModule``: ONNX Runtime on the CPU (fp32 or QDQ int8 ONNX files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from efficientbioai.engines.base import BaseInfer, require_file
from efficientbioai.engines.ort_providers import check_providers
from efficientbioai.errors import ArtefactError
from efficientbioai.offline import disable_onnxruntime_events
from efficientbioai.registry import register_engine


@register_engine("onnxruntime")
class ORTModule(BaseInfer):
    """An ``InferenceSession`` with all graph optimisations and a fixed intra-op thread count."""

    name = "onnxruntime"

    def __init__(
        self,
        path: Path,
        precision: str = "fp32",
        threads: int | None = None,
        providers: list[str] | None = None,
        provider_options: list[dict] | None = None,
    ) -> None:
        import onnxruntime as ort

        super().__init__(precision, threads)
        disable_onnxruntime_events()
        path = require_file(path, f"ONNX model for onnxruntime:{precision}")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        # ORT's workers spin after each call by default and slow whatever runs next on the CPU
        # (another engine timed round-robin, the runtime's post-processing); let them sleep.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = providers or ["CPUExecutionProvider"]
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=providers, provider_options=provider_options
            )
        except Exception as exc:
            raise ArtefactError(f"{path}: ONNX Runtime cannot load it: {exc}") from None
        spec = self.session.get_inputs()[0]
        self.input_name = spec.name
        self.input_rank = len(spec.shape)
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.providers = self.session.get_providers()
        if providers != ["CPUExecutionProvider"]:  # ORT falls back to the CPU silently: check
            check_providers(providers, self.providers, ort.get_available_providers(), path)

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, {self.input_name: x})

    def describe(self) -> dict:
        return {**super().describe(), "providers": self.providers}
