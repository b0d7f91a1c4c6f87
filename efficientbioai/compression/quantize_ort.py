"""ONNX Runtime static int8 quantization (QDQ), calibrated by a calibrator we configure.

Defaults are the fast combination on x86 CPUs: U8 activations, S8 per-channel weights
(S8 activations leave ops unfused). The calibrator is built and run here rather than inside
``quantize_static``, because ``quantize_static`` cannot pass the histogram sizes through: its
entropy method then searches a single threshold and equals min-max. Our calibrated ranges are
saved as ``ort_calibration.json`` and handed to ``quantize_static`` as its calibration cache.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from pathlib import Path

import numpy as np

from efficientbioai.compression.accuracy_control import accuracy_record_path, control_accuracy
from efficientbioai.compression.quantizer import Quantizer, match_nodes
from efficientbioai.errors import ConfigError
from efficientbioai.manifest import machine, write_json
from efficientbioai.registry import register_quantizer

log = logging.getLogger(__name__)


class _Reader:
    """``CalibrationDataReader`` over a list of arrays (ORT asks for ``get_next``)."""

    def __init__(self, input_name: str, arrays: list[np.ndarray]) -> None:
        self.input_name = input_name
        self.arrays = arrays
        self._it = iter(arrays)

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self._it, None)
        return None if x is None else {self.input_name: x.astype(np.float32)}

    def __len__(self) -> int:
        return len(self.arrays)


def _method(name: str):
    from onnxruntime.quantization import CalibrationMethod

    return {
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
    }[name]


def calibrate_ranges(onnx_path: Path, calibration: list[np.ndarray], settings, cache: Path):
    """Run the configured calibrator over ``calibration`` and save the ranges to ``cache``."""
    import onnx
    from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data

    extra = {"symmetric": settings.symmetric_activations}
    if settings.method == "percentile":
        extra.update(num_bins=2048, percentile=settings.percentile)
    elif settings.method == "entropy":
        extra.update(num_bins=settings.entropy_bins, num_quantized_bins=128)
    input_name = onnx.load(str(onnx_path), load_external_data=False).graph.input[0].name
    with tempfile.TemporaryDirectory(prefix="ebai_ort_calib_") as tmp:
        calibrator = create_calibrator(
            onnx_path,
            None,
            augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=_method(settings.method),
            extra_options=extra,
        )
        # ORT's histogram calibrators print() progress; keep stdout for our own table.
        with contextlib.redirect_stdout(io.StringIO()):
            calibrator.collect_data(_Reader(input_name, calibration))
            ranges = calibrator.compute_data()
    save_tensors_data(ranges, cache)
    return ranges


#: CPU features whose int8 dot products accumulate u8 x s8 in int32 (no int16 saturation).
_INT32_DOT = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})


def reduce_range_for(setting: bool | str, isa: list[str] | set[str]) -> bool:
    """Whether to quantize weights to 7 bits: ``setting`` if a bool, else (``"auto"``) on an x86 CPU
    (``avx2`` among its ``isa`` features, :func:`efficientbioai.manifest.machine`) with no int32
    int8 dot product.

    Without VNNI, ONNX Runtime's x86 U8S8 kernels use ``VPMADDUBSW``, which adds two u8 x s8
    products into a saturating int16: 255 x 127 x 2 overflows it, 255 x 64 x 2 does not. On the
    AVX2-only EPYC a tiny U-Net's int8 output fell to Pearson 0.988 against fp32 with 8-bit weights.

    >>> [reduce_range_for("auto", isa) for isa in (["avx2"], ["avx2", "avx512_vnni"], [])]
    [True, False, False]
    """
    if isinstance(setting, bool):
        return setting
    isa = set(isa)
    return "avx2" in isa and not _INT32_DOT & isa


@register_quantizer("onnxruntime")
class OnnxRuntimeQuantizer(Quantizer):
    """``model_int8.onnx``: QDQ, per-channel weights, calibration method from the config."""

    variant = "onnxruntime:int8"
    #: Op types to quantize (None: ONNX Runtime's default set) and extra ``quantize_static``
    #: options; a back end with its own rules (``quantize_trt.TensorRTQuantizer``) sets them.
    op_types: tuple[str, ...] | None = None
    extra_options: dict = {}

    def apply(self, onnx_path: Path, calibration: list[np.ndarray], out_dir: Path) -> Path:
        from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process

        s = self.settings
        out_dir.mkdir(parents=True, exist_ok=True)
        out = out_dir / "model_int8.onnx"
        pre = out_dir / "model_int8_preprocessed.onnx"
        cache = out_dir / "ort_calibration.json"
        # Dynamic axes defeat symbolic shape inference; ONNX shape inference is enough here.
        quant_pre_process(str(onnx_path), str(pre), skip_symbolic_shape=True)
        calibrate_ranges(pre, calibration, s, cache)
        qtype = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
        reduce_range = reduce_range_for(s.reduce_range, machine()["isa"])

        def quantize(exclude: list[str]) -> Path:
            quantize_static(
                str(pre),
                str(out),
                calibration_data_reader=None,
                quant_format=QuantFormat.QDQ,
                per_channel=s.per_channel,
                activation_type=qtype[s.activation_type],
                weight_type=qtype[s.weight_type],
                reduce_range=reduce_range,
                nodes_to_exclude=exclude,
                op_types_to_quantize=list(self.op_types) if self.op_types else None,
                calibrate_method=_method(s.method),
                calibration_cache_path=str(cache),
                extra_options={
                    "ActivationSymmetric": s.symmetric_activations,
                    "WeightSymmetric": True,
                    **self.extra_options,
                },
            )
            return out

        keep = match_nodes(pre, self.keep_float)
        if s.max_accuracy_drop is None:
            quantize(keep)
        else:
            self._with_accuracy_control(pre, quantize, keep, out)
        pre.unlink()
        bits = "7-bit weights (reduce_range: int16 sums on this CPU)" if reduce_range else "8-bit weights"
        log.info("ONNX Runtime int8 (%s calibration, %d samples, %s) → %s", s.method, len(calibration), bits, out)
        return out

    def _with_accuracy_control(self, pre: Path, quantize, keep: list[str], out: Path) -> None:
        """Keep the most sensitive layers in float until the validation metric is within budget
        (:mod:`efficientbioai.compression.accuracy_control`); the result goes beside ``out``."""
        if self.validation is None or not self.validation.pairs:
            raise ConfigError("quantize.onnxruntime.max_accuracy_drop needs validation pairs (data.validation)")
        result = control_accuracy(pre, quantize, self.validation, self.settings.max_accuracy_drop, keep)
        write_json(accuracy_record_path(out), {"variant": self.variant, **result.record()})
        if not result.within:
            log.warning(
                "%s: the validation metric dropped by %.4f with %d layer(s) in float, above the budget %g",
                self.variant,
                result.drop,
                len(result.kept_float),
                result.max_drop,
            )
