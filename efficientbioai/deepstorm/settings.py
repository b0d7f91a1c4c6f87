"""The ``deepstorm`` config section: training patches, targets, loss, metric and test sample.

The microscope (pixel size, PSF, camera, emitter density, photons, background) comes from the
shared ``simulation`` section; this section adds what is particular to Deep-STORM. The
super-resolution factor is a model property (``model.params.upsample``).

Example
-------
deepstorm:
  patch_size: 26            # camera pixels; ×8 → 208×208 on the fine grid
  patches: 3000             # training pool (Deep-STORM: 10,000)
  filaments: {count: 10}
"""

from __future__ import annotations

from pydantic import Field

from efficientbioai.registry import register_section
from efficientbioai.section import Section
from efficientbioai.smlm.filaments import FilamentSection


@register_section("deepstorm", "Deep-STORM patches, targets, loss and test sample")
class DeepSTORMSection(Section):
    patch_size: int = Field(26, ge=8, le=512, description="training patch side in camera pixels (Deep-STORM: 26)")
    patches: int = Field(3000, ge=16, description="training patches simulated before training (Deep-STORM: 10,000)")
    patches_per_frame: int = Field(8, ge=1, description="random patches cut from each simulated frame")
    min_emitters: int = Field(7, ge=0, description="patches with fewer emitters are skipped (Deep-STORM: 7)")
    validation_patches: int = Field(192, ge=1, description="held-out patches for the validation loss")
    target_sigma_px: float = Field(1.0, gt=0, description="Gaussian of the targets and of the loss, fine pixels")
    target_scale: float = Field(100.0, gt=0, description="target amplitude (Deep-STORM: ×100)")
    l1_weight: float = Field(1.0, ge=0, description="weight of the mean |prediction| sparsity term")
    metric_sigma_px: float = Field(1.0, gt=0, description="Gaussian blur of both images before NMSE/PSNR, fine px")
    filaments: FilamentSection = Field(default_factory=FilamentSection)
    train_threads: int | None = Field(
        1,
        ge=1,
        description="torch threads while training; 1 is ~3× faster than 2 on a 2-core machine shared with other "
        "jobs (OpenMP threads wait on each other); null: torch's default",
    )
