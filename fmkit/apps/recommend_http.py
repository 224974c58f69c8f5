"""The recommender behind fmkit's HTTP server (fmkit.inference.server): POST /v1/recommend.

It plugs in through the server's route registry (ROUTE_PROVIDERS["recommend"]), like the support app,
so it gets the same limits (body size, items per request), batching queue, API key, /health, /ready and
/metrics as a model server. A request names a known user or a new user's liked items:

    {"user": "42", "k": 10}            {"liked": ["1", "260", "1196"], "k": 5}

An unknown user or item id answers 404 naming it; the ranking runs in the server's inference thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field, StrictStr, model_validator

from fmkit.apps.recommend import Recommender
from fmkit.errors import FmkitError

TASK = "recommend"
MAX_K = 1000
MAX_ID_CHARS = 200


class RecommendIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"user": "42", "k": 10},
                                                                              {"liked": ["1", "260"], "k": 5}]})

    user: StrictStr | None = Field(None, min_length=1, max_length=MAX_ID_CHARS,
                                   description="Id of a user in the app's ratings.")
    liked: list[StrictStr] | None = Field(None, min_length=1,
                                          description="Item ids a new user likes, oldest first (instead of user).")
    k: int = Field(10, ge=1, le=MAX_K, description="How many items to recommend.")

    @model_validator(mode="after")
    def _one_of(self) -> RecommendIn:
        if (self.user is None) == (self.liked is None):
            raise ValueError("give either 'user' (a known user) or 'liked' (item ids of a new user), not both")
        return self


def routes(ctx: Any) -> APIRouter:
    rec: Recommender = ctx.predictor

    def rank(requests: list[RecommendIn]) -> list[list[dict[str, Any]]]:
        return [rec.recommend_for_user(r.user, r.k) if r.user is not None else rec.recommend_for_items(r.liked or [], r.k)
                for r in requests]

    ctx.batcher.register("recommend", rank)
    router = APIRouter(prefix="/v1", tags=["recommend"])

    @router.post("/recommend", summary="Top-k items for a known user or for a few liked items")
    async def recommend(body: RecommendIn) -> dict[str, Any]:
        limit = ctx.settings.max_texts_per_request
        if body.liked is not None:
            if len(body.liked) > limit:
                raise HTTPException(413, f"{len(body.liked)} liked items in one request; the limit is {limit} "
                                         "(serve.max_texts_per_request).")
            too_long = next((i for i, item in enumerate(body.liked) if len(item) > MAX_ID_CHARS), None)
            if too_long is not None:
                raise HTTPException(422, f"liked[{too_long}] is not an item id (over {MAX_ID_CHARS} characters).")
        # Unknown ids are answered here, before the request joins a batch, so they cost no ranking.
        try:
            rec.check_request(body.user, body.liked)
        except FmkitError as exc:
            raise HTTPException(404, str(exc)) from None
        (items,) = await ctx.submit_checked("recommend", [body])
        return {"items": items}

    return router


def create_recommend_app(app_dir: Path | str, settings: Any | None = None, api_key: str | None = None) -> Any:
    """A FastAPI app serving one recommender app folder (run it with uvicorn)."""
    from fmkit.inference import server

    server.ROUTE_PROVIDERS.setdefault(TASK, "fmkit.apps.recommend_http:routes")
    return server.create_app(Recommender.load(app_dir), settings, api_key=api_key, task=TASK)
