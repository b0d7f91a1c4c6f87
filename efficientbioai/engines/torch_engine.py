"""``TorchModule``: the fp32 PyTorch reference every compressed variant is compared with."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from efficientbioai.engines.base import BaseInfer
from efficientbioai.registry import register_engine


@register_engine("torch")
class TorchModule(BaseInfer):
    """Eager PyTorch on the CPU (or a CUDA device), ``torch.no_grad``, fp32."""

    name = "torch"
    keeps_outputs_on_device = True

    def __init__(
        self, model: nn.Module, precision: str = "fp32", threads: int | None = None, device: str = "cpu"
    ) -> None:
        super().__init__(precision, threads)
        if precision != "fp32":
            raise ValueError(f"TorchModule is the fp32 reference; got precision {precision!r}")
        if threads:
            torch.set_num_threads(threads)
        # Denormal floats (e.g. a sigmoid far into saturation) are 10–100× slower per op on x86;
        # flushed to zero, the reference's speed does not depend on them: without it the shipped
        # 3D DilatedLoc ran 354 instead of 247 ms per batch, flattering every ratio.
        torch.set_flush_denormal(True)
        self.threads = torch.get_num_threads()
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        outs = self.device_outputs(x)
        self.sync()
        return [o.detach().cpu().numpy() for o in outs]

    def device_outputs(self, x: np.ndarray) -> list[torch.Tensor]:
        with torch.no_grad():
            out = self.model(torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(self.device))
        if isinstance(out, dict):
            self.output_names = list(out)
            return list(out.values())
        return [out] if isinstance(out, torch.Tensor) else list(out)

    def move_to(self, device: str) -> None:
        self.device = torch.device(device)
        self.model.to(self.device)

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def describe(self) -> dict:
        return {**super().describe(), "device": str(self.device)}
