"""``OPVModule``: OpenVINO on the CPU, precision always set explicitly.

OpenVINO's CPU plugin defaults to bf16 on CPUs with AMX/AVX512-BF16, so an unset hint would
report bf16 numbers as fp32. This engine sets ``INFERENCE_PRECISION_HINT`` every time (f32 for
the fp32 and int8 IRs — int8 ops come from the IR, the rest stay f32 — and bf16 when asked),
and reads back what the plugin actually uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from efficientbioai.engines.base import BaseInfer, require_file
from efficientbioai.errors import ArtefactError
from efficientbioai.registry import register_engine

_HINT = {"fp32": "f32", "int8": "f32", "bf16": "bf16"}


@register_engine("openvino")
class OPVModule(BaseInfer):
    """A compiled OpenVINO model with an async infer queue for throughput."""

    name = "openvino"

    def __init__(
        self,
        path: Path,
        precision: str = "fp32",
        threads: int | None = None,
        num_requests: int = 2,
        device: str = "CPU",
    ) -> None:
        import openvino as ov
        import openvino.properties as props
        import openvino.properties.hint as hints

        super().__init__(precision, threads)
        path = require_file(path, f"OpenVINO IR for openvino:{precision}")
        if precision not in _HINT:
            raise ValueError(f"OpenVINO precision must be one of {sorted(_HINT)}, got {precision!r}")
        core = ov.Core()
        config = {
            hints.inference_precision: _HINT[precision],
            hints.performance_mode: hints.PerformanceMode.LATENCY,
            hints.num_requests: num_requests,
        }
        if threads:
            config[props.inference_num_threads] = threads
        try:
            model = core.read_model(str(path))
            self.compiled = core.compile_model(model, device, config)
        except Exception as exc:
            raise ArtefactError(f"{path}: OpenVINO cannot load it: {exc}") from None
        self.input_rank = self.compiled.input(0).get_partial_shape().rank.get_length()
        self.output_names = [o.get_any_name() for o in self.compiled.outputs]
        self.request = self.compiled.create_infer_request()
        self.num_requests = num_requests
        precision_type = self.compiled.get_property(hints.inference_precision)
        self.actual_precision = getattr(precision_type, "to_string", precision_type.__str__)()
        self.threads = threads or int(self.compiled.get_property(props.inference_num_threads))
        self.device = device

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        self.request.infer({0: x})
        return [self.request.get_output_tensor(i).data.copy() for i in range(len(self.output_names))]

    def map_batches(self, batches: Iterable[np.ndarray]) -> Iterator[np.ndarray | dict[str, np.ndarray]]:
        """Keep ``num_requests`` batches in flight with ``AsyncInferQueue``; yield in order.

        The queue lives as long as the engine and is drained in ``finally``, and its callback
        holds no reference to the engine: otherwise the last reference to the engine (or the
        queue) could be dropped on an OpenVINO worker thread, whose destructor then joins
        itself and aborts the process ("Resource deadlock avoided").
        """
        import openvino as ov

        if getattr(self, "_queue", None) is None:
            self._queue = ov.AsyncInferQueue(self.compiled, self.num_requests)
        queue = self._queue
        results: dict[int, list[np.ndarray]] = {}
        n_out = len(self.output_names)

        def done(request, index, results=results, n_out=n_out):
            results[index] = [request.get_output_tensor(i).data.copy() for i in range(n_out)]

        queue.set_callback(done)
        submitted = yielded = 0
        try:
            for x in batches:
                queue.start_async({0: self._check(x)}, submitted)
                submitted += 1
                while yielded in results:
                    yield self._pack(results.pop(yielded))
                    yielded += 1
            queue.wait_all()
            while yielded < submitted:
                yield self._pack(results.pop(yielded))
                yielded += 1
        finally:
            queue.wait_all()  # never leave requests in flight (early exit, error, Ctrl-C)

    def _pack(self, outs: list[np.ndarray]) -> np.ndarray | dict[str, np.ndarray]:
        return outs[0] if len(outs) == 1 else dict(zip(self.output_names, outs))

    def describe(self) -> dict:
        return {
            **super().describe(),
            "device": self.device,
            "inference_precision": self.actual_precision,
            "num_requests": self.num_requests,
        }
