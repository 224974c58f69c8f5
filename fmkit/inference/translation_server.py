"""Server routes of a translation model: POST /v1/translate.

    {"texts": ["我们明天见。"]}                          -> {"model", "translations": [{"text", "direction", "translation"}]}
    {"texts": ["See you tomorrow."], "direction": "en-zh"}

Without a direction each text goes the way its script says (a model trained both ways) or the model's only
way. Requests without settings go through the server's batcher (op "translate"); others run in a thread.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from fmkit.errors import DataError
from fmkit.inference.server import ServeContext


class TranslateIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"texts": ["我们明天见。"]}]})

    texts: list[StrictStr] = Field(min_length=1, description="Sentences to translate, in order.")
    direction: str | None = Field(None, pattern=r"^[A-Za-z]{2,3}-[A-Za-z]{2,3}$",
                                  description="'SRC-TGT', one the model learned (default: by each text's script).")
    max_new_tokens: int | None = Field(None, ge=1, le=1024, description="Tokens per translation (default: the model's).")


def routes(ctx: ServeContext) -> APIRouter:
    predictor = ctx.predictor
    ctx.batcher.register("translate", predictor.translate)
    router = APIRouter(prefix="/v1", tags=["translation"])

    @router.post("/translate", summary="Translate sentences")
    async def translate(body: TranslateIn) -> dict[str, Any]:
        texts = ctx.clean_texts(body.texts, "texts")
        try:
            directions = [predictor.direction_for(t, body.direction).name for t in texts]
        except DataError as exc:
            raise HTTPException(422, exc.message) from None
        if body.direction is None and body.max_new_tokens is None:
            outputs = await ctx.submit_checked("translate", texts)
        else:
            outputs = await asyncio.to_thread(predictor.translate, texts, body.direction, body.max_new_tokens)
        return {"model": ctx.model_name,
                "translations": [{"text": t, "direction": d, "translation": o}
                                 for t, d, o in zip(texts, directions, outputs, strict=True)]}

    return router
