"""``OPVModule``: OpenVINO on the CPU, precision always set explicitly.

OpenVINO's CPU plugin defaults to bf16 on CPUs with AMX/AVX512-BF16, so an unset hint would
report bf16 numbers as fp32. This engine sets ``INFERENCE_PRECISION_HINT`` every time (f32 for
the fp32 and int8 IRs — int8 ops come from the IR, the rest stay f32 — and bf16 for ``bf16`` and
``int8-bf16``, the int8 IR with its float layers in bf16), and reads back what the plugin uses.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from efficientbioai.engines.base import BaseInfer, OnOutput, require_file
from efficientbioai.errors import ArtefactError, BackendUnavailableError
from efficientbioai.registry import register_engine

_HINT = {"fp32": "f32", "int8": "f32", "bf16": "bf16", "int8-bf16": "bf16"}
#: ``ONEDNN_MAX_CPU_ISA`` values (prefixes) that still allow bf16 kernels.
_BF16_ISAS = ("ALL", "AVX512_CORE_BF16", "AVX512_CORE_AMX", "AVX2_VNNI_2", "AVX10")


def _refuse_capped_bf16(precision: str) -> None:
    """The CPU plugin picks bf16 from the CPU's flags, then crashes (int8-bf16: a segfault) when
    ``ONEDNN_MAX_CPU_ISA`` has capped those kernels away; refuse first, in words."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    if _HINT[precision] == "bf16" and cap and not cap.startswith(_BF16_ISAS):
        raise BackendUnavailableError(
            f"openvino:{precision} needs bf16 kernels, and ONEDNN_MAX_CPU_ISA={cap} caps them away: "
            "unset it, or leave this variant out"
        )


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
        _refuse_capped_bf16(precision)
        core = ov.Core()
        config = {
            hints.inference_precision: _HINT[precision],
            hints.performance_mode: hints.PerformanceMode.LATENCY,
            hints.num_requests: num_requests,
        }
        if threads:
            config[props.inference_num_threads] = threads
        try:
            self.compiled = core.compile_model(core.read_model(str(path)), device, config)
        except Exception as exc:
            raise ArtefactError(f"{path}: OpenVINO cannot load it: {exc}") from None
        precision_type = self.compiled.get_property(hints.inference_precision)
        self.actual_precision = getattr(precision_type, "to_string", precision_type.__str__)()
        if _HINT[precision] == "bf16" and self.actual_precision != "bf16":
            # Without bf16 kernels (AVX2, AVX-512 without BF16) the plugin quietly runs f32: the
            # variant would be a renamed fp32 or int8 one, and a report would call it bf16.
            twin = "openvino:int8" if precision == "int8-bf16" else "openvino:fp32"
            raise BackendUnavailableError(
                f"openvino:{precision} needs bf16 kernels and this CPU has none (OpenVINO would run it in "
                f"{self.actual_precision}, the same as {twin}): leave this variant out"
            )
        self.input_rank = self.compiled.input(0).get_partial_shape().rank.get_length()
        self.output_names = [o.get_any_name() for o in self.compiled.outputs]
        self.request = self.compiled.create_infer_request()
        self.num_requests = num_requests
        self.threads = threads or int(self.compiled.get_property(props.inference_num_threads))
        self.device = device

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        self.request.infer({0: x})
        return [self.request.get_output_tensor(i).data.copy() for i in range(len(self.output_names))]

    def map_batches(self, batches: Iterable[np.ndarray]) -> Iterator[np.ndarray | dict[str, np.ndarray]]:
        """Keep ``num_requests`` batches in flight (:class:`AsyncExecutor`); yield in order."""
        results: dict[int, list] = {}
        executor = self.executor(results.__setitem__)
        yielded = 0
        try:
            for i, x in enumerate(batches):
                executor.submit(x, i)
                while yielded in results:
                    yield self._pack([o.numpy() for o in results.pop(yielded)])
                    yielded += 1
            executor.drain()  # every batch left is in results now (else drain raised)
            for i in sorted(results):
                yield self._pack([o.numpy() for o in results.pop(i)])
        finally:
            executor.close()  # never leave requests in flight (early exit, error, Ctrl-C)

    def executor(self, on_output: OnOutput, requests: int | None = None) -> AsyncExecutor:
        return AsyncExecutor(self, on_output, requests or self.num_requests)

    def release(self) -> None:
        del self.request, self.compiled

    def describe(self) -> dict:
        return {
            **super().describe(),
            "device": self.device,
            "inference_precision": self.actual_precision,
            "num_requests": self.num_requests,
        }


class AsyncExecutor:
    """OpenVINO's ``AsyncInferQueue`` with ``requests`` batches in flight.

    The completion callback only copies the outputs out of the request (which OpenVINO reuses
    as soon as the callback returns) and queues them; a post-processing thread calls
    ``on_output``. So the engine's threads never wait on Python post-processing or the GIL,
    and outputs are handled in completion order. An exception there is kept and raised by the
    next :meth:`submit` or :meth:`drain`, with the batch's ``meta`` attached as ``exc.meta``.
    """

    def __init__(self, engine: BaseInfer, on_output: OnOutput, requests: int) -> None:
        import openvino as ov

        self.engine, self.on_output = engine, on_output
        self.queue = ov.AsyncInferQueue(engine.compiled, max(1, requests))
        self.queue.set_callback(self._done)
        self.error: BaseException | None = None
        self.outputs: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._post, name="efficientbioai-post", daemon=True)
        self.thread.start()

    def _done(self, request, meta: Any) -> None:
        try:
            outs = [request.get_output_tensor(i).data.copy() for i in range(len(self.engine.output_names))]
        except BaseException as exc:  # never let an exception escape into OpenVINO's thread
            exc.meta = meta
            self.error = self.error or exc
            outs = None
        self.outputs.put((meta, outs))

    def _post(self) -> None:
        while True:
            meta, outs = self.outputs.get()
            try:
                if meta is None:
                    return
                if outs is not None and self.error is None:
                    self.on_output(meta, [torch.from_numpy(o) for o in outs])
            except BaseException as exc:
                exc.meta = meta
                self.error = self.error or exc
            finally:
                self.outputs.task_done()

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error

    def submit(self, x: np.ndarray, meta: Any) -> None:
        self._raise()
        self.queue.start_async({0: self.engine.prepare(x)}, meta)

    def drain(self) -> None:
        """Wait until every submitted batch is run and post-processed."""
        self.queue.wait_all()
        self.outputs.join()
        self._raise()

    def close(self) -> None:
        """Let requests in flight finish, then stop the post-processing thread."""
        self.queue.wait_all()
        self.outputs.put((None, None))
        self.thread.join(timeout=30)
