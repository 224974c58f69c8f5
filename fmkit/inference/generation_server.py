"""Server routes of a generation model: POST /v1/generate, whole answers or streamed as they are written.

    {"prompt": "Can I return an item?"}                       -> {"model", "prompt", "generated"}
    {"prompt": "...", "stream": true, "max_new_tokens": 32}   -> text/plain, chunk by chunk

Whole answers for several prompts go through the server's batcher (op "generate"); streams run one
at a time in a worker thread (the predictor's lock keeps the model to one generation at a time).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from fmkit.inference.server import ServeContext

# Sampling divides the logits by the temperature: a tiny one (1e-300 is valid input) overflows them to
# inf/NaN and the sampler raises. Below this, sampling is greedy in effect anyway, so it is run greedy.
GREEDY_BELOW = 0.01


class GenerateIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"prompt": "Can I return an item?"}]})

    prompt: StrictStr = Field(min_length=1, description="The user message; the model's chat template is applied.")
    max_new_tokens: int | None = Field(None, ge=1, le=1024, description="Tokens to generate (default: the model's).")
    temperature: float | None = Field(None, ge=0.0, le=5.0,
                                      description=f"0 = greedy, as is anything below {GREEDY_BELOW} (default: the model's).")
    stream: bool = Field(False, description="Stream text/plain chunks as they are generated.")


def routes(ctx: ServeContext) -> APIRouter:
    predictor = ctx.predictor
    ctx.batcher.register("generate", predictor.generate)
    router = APIRouter(prefix="/v1", tags=["generation"])

    @router.post("/generate", summary="Generate an answer to a prompt (optionally streamed)", response_model=None)
    async def generate(body: GenerateIn) -> dict[str, Any] | StreamingResponse:
        # Checked here, not only in ctx.run: a stream or a custom-settings call skips the batcher, and a
        # stream has already answered 200 when the tokenizer would fail.
        [prompt] = ctx.clean_texts([body.prompt], "prompt", indexed=False)
        if body.temperature is not None and body.temperature < GREEDY_BELOW:
            body = body.model_copy(update={"temperature": 0.0})
        if body.stream:
            return StreamingResponse(_stream(predictor, prompt, body), media_type="text/plain; charset=utf-8")
        if body.max_new_tokens is None and body.temperature is None:
            [text] = await ctx.run("generate", [prompt], "prompt", indexed=False)
        else:
            [text] = await asyncio.to_thread(predictor.generate, [prompt], body.max_new_tokens, body.temperature)
        return {"model": ctx.model_name, "prompt": prompt, "generated": text}

    return router


async def _stream(predictor: Any, prompt: str, body: GenerateIn) -> AsyncIterator[str]:
    pieces = predictor.stream(prompt, body.max_new_tokens, body.temperature)
    done = object()
    while True:
        # Each piece is waited for in a thread, so the event loop keeps serving other requests.
        piece = await asyncio.to_thread(next, pieces, done)
        if piece is done:
            break
        yield str(piece)
