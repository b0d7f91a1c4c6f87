"""OpenVINO int8: ``nncf.quantize`` on the OpenVINO model read from the verified ONNX file.

Reading ONNX with ``Core.read_model`` (the C++ frontend) rather than ``openvino.convert_model``
keeps the model converter's telemetry out of the run.
"""

from __future__ import annotations

import fnmatch
import logging
from pathlib import Path

import numpy as np

from efficientbioai.compression.convert import read_onnx, save_ir
from efficientbioai.compression.quantizer import Quantizer
from efficientbioai.errors import ConfigError
from efficientbioai.registry import register_quantizer

log = logging.getLogger(__name__)


@register_quantizer("openvino")
class OpenVINOQuantizer(Quantizer):
    """``openvino/model_int8.xml``: NNCF post-training quantization (preset from the config)."""

    variant = "openvino:int8"

    def apply(self, onnx_path: Path, calibration: list[np.ndarray], out_dir: Path) -> Path:
        import nncf

        nncf.set_log_level(logging.ERROR)
        from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
        from nncf.quantization.range_estimator import RangeEstimatorParametersSet

        model = read_onnx(onnx_path)
        names = [op.get_friendly_name() for op in model.get_ops()]
        ignored = []
        for pattern in self.keep_float:
            hits = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
            if not hits:
                raise ConfigError(
                    f"quantize.keep_float: {pattern!r} matches no OpenVINO op of {onnx_path.name}; "
                    f"op names look like {names[1:5]}"
                )
            ignored.extend(hits)
        common = dict(
            preset=getattr(nncf.QuantizationPreset, self.settings.preset.upper()),
            subset_size=len(calibration),
            fast_bias_correction=self.settings.fast_bias_correction,
            ignored_scope=nncf.IgnoredScope(names=ignored) if ignored else None,
        )
        advanced = AdvancedQuantizationParameters(
            activations_range_estimator_params=getattr(
                RangeEstimatorParametersSet, self.settings.range_estimator.upper()
            )
        )
        max_drop = self.settings.max_accuracy_drop
        if max_drop is None:
            quantized = nncf.quantize(model, nncf.Dataset(calibration), advanced_parameters=advanced, **common)
        else:
            quantized = self._with_accuracy_control(nncf, model, calibration, max_drop, advanced, common)
        out = save_ir(quantized, out_dir / "openvino" / "model_int8.xml")
        log.info("OpenVINO int8 (NNCF %s, %d samples) → %s", self.settings.preset, len(calibration), out)
        return out

    def _with_accuracy_control(self, nncf, model, calibration, max_drop, advanced, common):
        """``nncf.quantize_with_accuracy_control``: revert sensitive layers until the drop is small."""
        validation = self.validation
        if validation is None or not validation.pairs:
            raise ConfigError("quantize.openvino.max_accuracy_drop needs validation pairs (data.validation)")
        return nncf.quantize_with_accuracy_control(
            model,
            nncf.Dataset(calibration),
            nncf.Dataset(validation.pairs),
            validation_fn=lambda compiled, items: validation.score(lambda x: compiled(x)[0]),
            max_drop=max_drop,
            drop_type=nncf.DropType.ABSOLUTE,
            advanced_quantization_parameters=advanced,
            **common,
        )
