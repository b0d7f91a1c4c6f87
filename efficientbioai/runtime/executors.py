"""Running batches on one engine with several in flight, handing outputs on as early as possible.

An executor takes batches (:meth:`submit`) and calls ``on_output(meta, outputs)`` for each as
soon as its outputs exist, with the outputs as torch tensors *on the engine's device* — so a
task's post-processing (DilatedLoc's spatial integration, Deep-STORM's frame sum) runs where
the network ran, and only its small result is copied to the host.

- :class:`AsyncExecutor` (OpenVINO): an ``AsyncInferQueue`` kept full across chunk borders;
  outputs are post-processed by a thread fed from its completion callback, so a result never
  waits for the next submission and the device never drains between chunks.
- :class:`SyncExecutor` (torch, TensorRT, ONNX Runtime): one batch at a time. torch and
  TensorRT keep outputs on their device (``TorchModule.model``, ``TRTModule.run_device``);
  several requests in flight come from several workers (TensorRT: one execution context on
  its own CUDA stream each).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from efficientbioai.engines.base import BaseInfer

OnOutput = Callable[[Any, list], None]


def device_outputs(engine: BaseInfer, x: np.ndarray) -> list[torch.Tensor]:
    """One batch through ``engine``; outputs as tensors, left on the device where the engine has one."""
    from efficientbioai.engines.torch_engine import TorchModule

    if isinstance(engine, TorchModule):
        with torch.no_grad():
            out = engine.model(torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(engine.device))
        if isinstance(out, torch.Tensor):
            return [out]
        return list(out.values()) if isinstance(out, dict) else list(out)
    if hasattr(engine, "run_device"):  # TensorRT: outputs stay in GPU memory
        outs = engine.run_device(x)
        engine.gpu.synchronize()  # the stream's work is done before torch ops read the tensors
        return list(outs)
    return [torch.from_numpy(o) for o in engine.run(engine._check(x))]


class SyncExecutor:
    """Runs each batch when submitted and calls ``on_output`` right away."""

    def __init__(self, engine: BaseInfer, on_output: OnOutput) -> None:
        self.engine, self.on_output = engine, on_output

    def submit(self, x: np.ndarray, meta: Any) -> None:
        self.on_output(meta, device_outputs(self.engine, x))

    def drain(self) -> None:
        """Nothing is ever in flight."""

    def close(self) -> None:
        """Nothing to stop."""


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
        self.n_outputs = len(engine.output_names)
        self.error: BaseException | None = None
        self.outputs: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._post, name="efficientbioai-post", daemon=True)
        self.thread.start()

    def _done(self, request, meta: Any) -> None:
        try:
            outs = [request.get_output_tensor(i).data.copy() for i in range(self.n_outputs)]
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
        self.queue.start_async({0: self.engine._check(x)}, meta)

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


def executor_for(engine: BaseInfer, on_output: OnOutput, streams: int | None = None):
    """The executor that keeps ``engine`` busiest: async for OpenVINO, synchronous otherwise."""
    if hasattr(engine, "compiled") and getattr(engine, "name", "") == "openvino":
        return AsyncExecutor(engine, on_output, streams or getattr(engine, "num_requests", 2))
    return SyncExecutor(engine, on_output)
