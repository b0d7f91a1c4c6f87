"""The camera that recorded the data, apart from the camera the model was trained on.

A localizer trained on simulated frames has learned one camera's ADU scale (``simulation.camera``).
Frames from another camera are converted before the network, per pixel and affinely:

    photons    = (ADU − offset) / (ADU per photon)                 (the acquisition camera)
    model ADU  = photons · (ADU per photon of the training camera) + its baseline

with ``ADU per photon = QE · EM gain / (e⁻ per ADU)`` (EM gain 1 for sCMOS/CCD). An sCMOS
offset map (and gain map) replaces the scalars pixel by pixel. The result is exactly what the
training camera would have recorded on average; the noise keeps the acquisition camera's
statistics, which the network tolerates when its scale is right (see the README's camera
experiment).

The config block::

    acquisition:
      offset: 100.0          # ADU; or offset_map: dark_mean.tif (sCMOS, per pixel)
      e_per_adu: 0.5         # or adu_per_photon (the overall conversion, QE and EM gain included)
      em_gain: null          # EMCCD gain; null for sCMOS/CCD
      qe: 0.8
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field, model_validator

from efficientbioai.errors import InputError
from efficientbioai.io.images import read_image
from efficientbioai.registry import register_section
from efficientbioai.section import Section
from efficientbioai.smlm.camera import Camera


@register_section(
    "acquisition", "SMLM: the camera of the data analysed (frames are converted to the training camera's units)"
)
class AcquisitionSection(Section):
    """The camera of the data being analysed (``efficientbioai camera`` estimates it)."""

    offset: float = Field(100.0, description="ADU of a dark pixel (the camera's baseline)")
    offset_map: Path | None = Field(None, description="per-pixel offset image (sCMOS), TIFF or .npy")
    e_per_adu: float | None = Field(None, gt=0, description="electrons per ADU (the ADC gain)")
    adu_per_photon: float | None = Field(None, gt=0, description="overall ADU per photon (instead of e_per_adu)")
    gain_map: Path | None = Field(
        None, description="per-pixel gain relative to the nominal one (sCMOS; 1 = nominal): ADU are divided by it"
    )
    em_gain: float | None = Field(None, gt=0, description="EMCCD gain; null for sCMOS/CCD")
    qe: float = Field(1.0, gt=0, le=1, description="quantum efficiency (electrons per photon)")
    read_noise_e: float | None = Field(None, ge=0, description="read noise, electrons rms (from dark frames)")

    @model_validator(mode="after")
    def _one_gain(self) -> AcquisitionSection:
        if (self.e_per_adu is None) == (self.adu_per_photon is None):
            raise ValueError("give exactly one of e_per_adu or adu_per_photon")
        return self

    def camera(self) -> Camera:
        """This camera as the simulator's noise model (read noise 0 when unknown)."""
        e_per_adu = self.e_per_adu or self.qe * (self.em_gain or 1.0) / self.adu_per_photon
        return Camera(self.qe, self.em_gain, e_per_adu, self.offset, self.read_noise_e or 0.0, 0.0)

    def photons_per_adu(self) -> float:
        if self.adu_per_photon is not None:
            return 1.0 / self.adu_per_photon
        return self.e_per_adu / ((self.em_gain or 1.0) * self.qe)


def adu_per_photon(camera: Camera) -> float:
    """The mean ADU a photon adds on ``camera``."""
    return camera.qe * (camera.em_gain or 1.0) / camera.e_per_adu


def _map(path: Path | None, shape: tuple[int, int], what: str) -> np.ndarray | None:
    if path is None:
        return None
    image = np.squeeze(read_image(path))
    if image.ndim == 3:  # a stack of dark frames: its mean
        image = image.mean(axis=0)
    if image.shape != shape:
        raise InputError(f"acquisition.{what}: {path} is {image.shape} but the frames are {shape}")
    return image.astype(np.float32)


class CameraConversion:
    """``frames (…, H, W)`` in the acquisition camera's ADU → the training camera's ADU."""

    def __init__(self, acquisition: AcquisitionSection, training: Camera) -> None:
        self.acquisition, self.training = acquisition, training
        self.scale = acquisition.photons_per_adu() * adu_per_photon(training)
        self._maps: dict[tuple[int, int], tuple] = {}

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        frames = np.asarray(frames, np.float32)
        shape = tuple(frames.shape[-2:])
        if shape not in self._maps:
            acq = self.acquisition
            self._maps[shape] = (_map(acq.offset_map, shape, "offset_map"), _map(acq.gain_map, shape, "gain_map"))
        offset_map, gain_map = self._maps[shape]
        offset = offset_map if offset_map is not None else np.float32(self.acquisition.offset)
        scale = np.float32(self.scale) / gain_map if gain_map is not None else np.float32(self.scale)
        return ((frames - offset) * scale + np.float32(self.training.baseline)).astype(np.float32)

    def describe(self) -> dict:
        return {"acquisition": self.acquisition.model_dump(mode="json"), "scale": self.scale}


def camera_conversion(config) -> CameraConversion | None:
    """The conversion a config asks for (``acquisition`` and ``simulation.camera``), or None."""
    if getattr(config, "acquisition", None) is None or config.simulation is None:
        return None
    return CameraConversion(config.acquisition, config.simulation.camera.build())
