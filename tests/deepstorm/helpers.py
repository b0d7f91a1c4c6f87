"""A tiny Deep-STORM config: small frames, a narrow U-Net, few frames — seconds, not minutes."""

from __future__ import annotations

TINY = {
    "model": {"parser": "deepstorm", "params": {"variant": "unet", "width": 8}},
    "simulation": {
        "frame_shape": [32, 32],
        "psf": {"kind": "gaussian", "sigma_nm": 110.0},
        "density_per_um2": [2.0, 6.0],
        "photons": [1000.0, 5000.0],
        "background": [20.0, 80.0],
        "z_range_nm": [0.0, 0.0],
        "margin_px": 0.0,
        "test": {"frames": 12, "density_per_um2": [3.0, 3.0], "photons": [1500.0, 3500.0], "background": [50.0, 50.0]},
    },
    "deepstorm": {"patch_size": 16, "patches": 32, "validation_patches": 8, "min_emitters": 2},
    "train": {"steps": 4, "batch_size": 4, "validation_frames": 4, "validation_every": 2},
    "data": {"calibration": {"num_samples": 4}},
    "inference": {"tile": [32, 32], "batch_size": 4},
    "report": {
        "compare": ["torch:fp32", "onnxruntime:int8", "openvino:int8"],
        "latency": {"warmup": 1, "runs": 3},
        "energy": {"enabled": False},
    },
}
