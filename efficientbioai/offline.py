"""Keep every run offline: switch off the telemetry of the inference engines before they load.

ONNX Runtime, OpenVINO's model converter and NNCF can report usage over the network. This
toolbox never sends anything: importing :mod:`efficientbioai` calls :func:`disable_telemetry`
before any of those libraries is imported, and ``tests/test_offline.py`` fails if a full
compress + inference run opens a socket.
"""

from __future__ import annotations

import os

_ENV = {
    "NNCF_CI": "1",  # NNCF replaces its telemetry with a stub when this is set
    "ORT_DISABLE_TELEMETRY": "1",
    "CODECARBON_LOG_LEVEL": "error",
    "HF_HUB_OFFLINE": "1",
}


def disable_telemetry() -> None:
    """Set the opt-out switches; call again after importing onnxruntime to stop its events."""
    for key, value in _ENV.items():
        os.environ.setdefault(key, value)
    _decline_openvino_telemetry()


def _decline_openvino_telemetry() -> None:
    """OpenVINO's telemetry sends unless a consent file says no; answer 'declined' in-process."""
    try:
        from openvino_telemetry.utils import opt_in_checker
    except ImportError:  # openvino not installed: nothing to switch off
        return
    declined = opt_in_checker.ConsentCheckResult.DECLINED
    opt_in_checker.OptInChecker.check = lambda self, *a, **k: declined


def disable_onnxruntime_events() -> None:
    """ONNX Runtime's own switch (a no-op on Linux builds, but explicit)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return
    if hasattr(ort, "disable_telemetry_events"):
        ort.disable_telemetry_events()
