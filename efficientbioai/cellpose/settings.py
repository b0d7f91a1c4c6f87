"""The ``cellpose`` config section: cellpose's own evaluation settings, and how to train the
bundled model on generated nuclei (``efficientbioai train``)."""

from __future__ import annotations

from pydantic import Field, model_validator

from efficientbioai.registry import register_section
from efficientbioai.section import Section


class CellposeTrainSection(Section):
    """``cellpose.train.train_seg`` on generated nuclei images (own seeds per split)."""

    images: int = Field(48, ge=2, description="generated training images")
    test_images: int = Field(8, ge=1, description="generated images for cellpose's test loss")
    image_shape: tuple[int, int] = (256, 256)
    epochs: int = Field(120, ge=1)
    learning_rate: float = Field(0.005, gt=0)
    weight_decay: float = Field(1e-5, ge=0)
    batch_size: int = Field(8, ge=1)
    bsize: int = Field(224, ge=32, description="training crop size (cellpose's bsize)")
    seed: int = 0


@register_section("cellpose", "cellpose evaluation and training settings")
class CellposeSection(Section):
    """Evaluation settings with cellpose's names and defaults (``CellposeModel.eval``)."""

    channels: tuple[int, int] = Field((0, 0), description="[cytoplasm, nucleus]; 0 = grayscale/none")
    diameter: float | None = Field(None, gt=0, description="pixels; null = the model's diam_labels")
    flow_threshold: float = Field(0.4, ge=0)
    cellprob_threshold: float = 0.0
    min_size: int = Field(15, ge=-1)
    tile_overlap: float = Field(0.1, ge=0.0, le=0.5)
    augment: bool = False
    niter: int | None = Field(None, ge=1, description="dynamics steps; null = 200 / rescale as cellpose")
    train: CellposeTrainSection = Field(default_factory=CellposeTrainSection)

    @model_validator(mode="after")
    def _channels(self) -> CellposeSection:
        if any(c < 0 or c > 3 for c in self.channels):
            raise ValueError(f"channels must be two of 0 (gray), 1 (red), 2 (green), 3 (blue); got {self.channels}")
        return self
