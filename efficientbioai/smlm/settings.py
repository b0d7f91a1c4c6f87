"""The ``simulation`` and ``train`` config sections for SMLM models (validated like the rest).

A DilatedLoc config describes the microscope once (``simulation``): training, calibration and
the evaluation stack all come from it, with disjoint seeds.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from efficientbioai.registry import register_section
from efficientbioai.section import Section
from efficientbioai.smlm.camera import Camera
from efficientbioai.smlm.filaments import FilamentSampler, FilamentSection, filament_points
from efficientbioai.smlm.psf import AstigmaticPSF, GaussianPSF
from efficientbioai.smlm.pupil import PRESETS, PupilPSF
from efficientbioai.smlm.simulate import EmitterSampler


class PSFSection(Section):
    kind: Literal["gaussian", "astigmatic", "pupil"] = "astigmatic"
    sigma_nm: float = Field(100.0, gt=0, description="gaussian/astigmatic: in-focus width")
    focal_offset_nm: float = 250.0
    depth_nm: float = Field(280.0, gt=0)
    na: float = Field(1.49, gt=0, description="pupil: numerical aperture")
    wavelength_nm: float = Field(660.0, gt=0)
    n_immersion: float = Field(1.518, gt=1)
    preset: Literal["astigmatic", "saddle_point", "tetrapod_3um", "tetrapod_6um"] | None = "astigmatic"
    zernike_nm: list[tuple[int, int, float]] = Field(
        default_factory=list, description="pupil: extra [n, m, nm] terms added to the preset's"
    )

    def build(self):
        if self.kind == "gaussian":
            return GaussianPSF(self.sigma_nm)
        if self.kind == "astigmatic":
            return AstigmaticPSF(self.sigma_nm, self.focal_offset_nm, self.depth_nm)
        coeffs = dict(PRESETS[self.preset]) if self.preset else {}
        for n, m, c in self.zernike_nm:
            coeffs[(n, m)] = coeffs.get((n, m), 0.0) + c
        try:
            return PupilPSF(self.na, self.wavelength_nm, self.n_immersion, coeffs)
        except ValueError as exc:
            raise ValueError(f"psf: {exc}") from None


class CameraSection(Section):
    qe: float = Field(0.9, gt=0, le=1)
    em_gain: float | None = Field(300.0, gt=0, description="null for sCMOS (not 0 or 1)")
    e_per_adu: float = Field(45.0, gt=0)
    baseline: float = Field(100.0, ge=0)
    read_sigma: float = Field(74.4, ge=0)
    spurious: float = Field(0.002, ge=0)

    def build(self) -> Camera:
        return Camera(**self.model_dump())


class TestSetSection(Section):
    """The simulated evaluation stack (own seeds; never used in training or calibration)."""

    frames: int = Field(200, ge=1)
    density_per_um2: tuple[float, float] = (0.1, 0.1)
    photons: tuple[float, float] = (5000.0, 20000.0)
    background: tuple[float, float] = (20.0, 50.0)


@register_section("simulation", "SMLM microscope and sample model")
class SimulationSection(Section):
    pixel_size: float = Field(100.0, gt=0, description="nm")
    frame_shape: list[int] = Field(default_factory=lambda: [64, 64])
    psf: PSFSection = Field(default_factory=PSFSection)
    camera: CameraSection = Field(default_factory=CameraSection)
    density_per_um2: tuple[float, float] = (0.05, 0.5)
    photons: tuple[float, float] = (2000.0, 20000.0)
    background: tuple[float, float] = (20.0, 200.0)
    z_range_nm: tuple[float, float] = (-700.0, 700.0)
    margin_px: float = Field(2.0, ge=0)
    blink_mean_frames: float = Field(2.0, ge=1.0, description="mean on-time (frames) for temporal context")
    filament_fraction: float = Field(
        0.0, ge=0, le=1, description="share of simulated training samples whose emitters crowd along filaments"
    )
    filaments: FilamentSection = Field(default_factory=FilamentSection)
    test: TestSetSection = Field(default_factory=TestSetSection)

    @model_validator(mode="after")
    def _ranges(self) -> SimulationSection:
        for name in ("density_per_um2", "photons", "background", "z_range_nm"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"{name}: low {lo} is above high {hi}")
        if len(self.frame_shape) != 2 or min(self.frame_shape) < 8:
            raise ValueError(f"frame_shape must be two sizes ≥ 8, got {self.frame_shape}")
        return self

    def for_test(self) -> SimulationSection:
        """This microscope with the test set's sample (density, photons, background; emitters
        placed uniformly: ``filament_fraction`` shapes training data only)."""
        t = self.test
        update = {"density_per_um2": t.density_per_um2, "photons": t.photons, "background": t.background}
        return self.model_copy(update={**update, "filament_fraction": 0.0})

    def sampler(self, density: float) -> EmitterSampler:
        return EmitterSampler(density, tuple(self.photons), tuple(self.z_range_nm), self.margin_px)

    def sample_layout(self, rng: np.random.Generator) -> np.ndarray | None:
        """One training sample's filament points ``(P, 2)`` nm, drawn with probability
        ``filament_fraction``; None: emitters placed uniformly (no random draw when the fraction is 0)."""
        if self.filament_fraction == 0 or rng.random() >= self.filament_fraction:
            return None
        field = (self.frame_shape[0] * self.pixel_size, self.frame_shape[1] * self.pixel_size)
        return filament_points(field, self.filaments, rng)

    def layout_sampler(self, density: float, points: np.ndarray | None) -> EmitterSampler | FilamentSampler:
        """Emitters at ``density`` per µm², on ``points`` when given (see :meth:`sample_layout`)."""
        if points is None:
            return self.sampler(density)
        sigma = self.filaments.label_sigma_nm
        return FilamentSampler(points, sigma, density, tuple(self.photons), tuple(self.z_range_nm))


@register_section("train", "training settings for `efficientbioai train`")
class TrainSection(Section):
    steps: int = Field(3000, ge=1)
    batch_size: int = Field(8, ge=1)
    lr: float = Field(8e-4, gt=0)
    lr_decay: float = Field(0.88, gt=0, le=1, description="StepLR factor every lr_step steps")
    lr_step: int = Field(1000, ge=1)
    validation_frames: int = Field(64, ge=1)
    validation_every: int = Field(500, ge=1, description="steps between validation Jaccard/RMSE")
    seed: int = 0
