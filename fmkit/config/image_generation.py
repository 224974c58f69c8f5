"""Config sections of the generation and image tasks (layer 0: pydantic only, no torch).

Kept beside schema.py so the shared schema only gains two fields (`image`, `generation`).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class AugmentConfig(_Section):
    """Training-time image augmentation (never applied at evaluation or prediction)."""

    enabled: bool = Field(True, description="Augment training images; off at evaluation and prediction always.")
    crop_scale_min: float = Field(
        0.6, gt=0.0, le=1.0, description="Random resized crop: smallest share of the image area kept (1.0: no crop)."
    )
    crop_ratio: tuple[float, float] = Field((0.75, 1.333), description="Random resized crop: aspect ratio range.")
    rotation_degrees: float = Field(10.0, ge=0.0, le=180.0, description="Random rotation within +/- this many degrees.")
    scale: tuple[float, float] = Field(
        (0.9, 1.1), description="Random zoom factor range applied after the crop (1.0, 1.0: none)."
    )
    hflip: float = Field(0.5, ge=0.0, le=1.0, description="Probability of a horizontal flip.")
    color_jitter: float = Field(
        0.2, ge=0.0, le=1.0, description="Brightness, contrast and saturation jitter strength (0: none)."
    )


class ImageConfig(_Section):
    """`--task image`: how images are read, sized and augmented."""

    image_size: int = Field(
        128, ge=32, le=512, description="Side in pixels the backbone sees (224 is EfficientNet-Lite0's native size)."
    )
    path_column: str | None = Field(
        None, description="CSV input: column holding the image path (auto-detected: path, image, file...)."
    )
    augment: AugmentConfig = Field(default_factory=AugmentConfig)


class GenerationConfig(_Section):
    """`--task generation`: sequence sizes, sampling and what evaluation generates."""

    max_length: int = Field(256, ge=16, le=8192, description="Maximum tokens of prompt + completion per example.")
    packing: bool = Field(
        False, description="Pack several short examples into one row (faster); off: batches grouped by length."
    )
    max_new_tokens: int = Field(64, ge=1, le=4096, description="Tokens generated per prompt at evaluation and predict.")
    eval_generations: int = Field(
        20, ge=0, description="Held-out examples generated at the end for exact match / ROUGE-L and samples."
    )
    temperature: float = Field(0.0, ge=0.0, le=5.0, description="Sampling temperature; 0 means greedy decoding.")
    # LoRA rank, alpha, dropout, learning rate and target modules come from the `strategy` section.
