"""HTTP routes of an image classifier: POST /v1/predict with base64-encoded images.

    {"images": ["iVBORw0KGgo...", "data:image/jpeg;base64,/9j/4AAQ..."]}
 -> {"model": ..., "predictions": [{"label": "cat", "scores": {...}}, ...]}

Every image is decoded and checked in the request's own handler, before it can join a shared batch: a
string that is not base64 or not an image PIL reads is a 422 naming `images[i]`; an image over
`MAX_IMAGE_PIXELS` (a decompression bomb, or just a huge photo) is a 413. The body size, the images per
request (`serve.max_texts_per_request`), the queue and the timeout are the server's usual limits.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import warnings
from typing import Any

from fastapi import APIRouter, HTTPException
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from fmkit.inference.server import ServeContext

# 40 megapixels: any camera photo, far below what would exhaust memory once decoded (4 bytes a pixel).
MAX_IMAGE_PIXELS = 40_000_000


class ImagesIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"images": ["<base64 PNG or JPEG>"]}]})

    images: list[StrictStr] = Field(
        min_length=1, description="Images as base64 strings (PNG, JPEG, WebP, BMP...), a data: URL prefix allowed.")


def decode_image(text: str, field: str) -> Image.Image:
    """One request image -> an RGB image, or the HTTP error that says what is wrong with it."""
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise HTTPException(422, f"{field} is not base64: send each image file's bytes base64-encoded.") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw)) as img:
                pixels = img.width * img.height  # from the header: nothing is decoded yet
                if pixels > MAX_IMAGE_PIXELS:
                    raise HTTPException(413, f"{field} is {img.width}x{img.height} pixels; the limit is "
                                             f"{MAX_IMAGE_PIXELS:,} pixels. Resize it before sending.")
                img.load()
                return img.convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise HTTPException(413, f"{field} decodes to more pixels than allowed; resize it before sending.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise HTTPException(422, f"{field} is not an image that can be read ({exc}).") from None


def routes(ctx: ServeContext) -> APIRouter:
    ctx.batcher.register("predict_images", ctx.predictor.predict_images)
    router = APIRouter(prefix="/v1", tags=[ctx.task])

    @router.post("/predict", summary="Label and class probabilities for each image")
    async def predict(body: ImagesIn) -> dict[str, Any]:
        limit = ctx.settings.max_texts_per_request
        if len(body.images) > limit:
            raise HTTPException(413, f"{len(body.images)} images in one request; the limit is {limit} "
                                     "(serve.max_texts_per_request). Split the request.")
        # Decoding is CPU work: off the event loop, so other requests keep being answered meanwhile.
        images = await asyncio.to_thread(lambda: [decode_image(t, f"images[{i}]") for i, t in enumerate(body.images)])
        return {"model": ctx.model_name, "predictions": await ctx.submit_checked("predict_images", images)}

    return router


__all__ = ["MAX_IMAGE_PIXELS", "ImagesIn", "decode_image", "routes"]
