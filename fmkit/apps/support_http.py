"""The support assistant behind fmkit's HTTP server (fmkit.inference.server): POST /v1/support/answer.

It plugs in through the server's route registry (ROUTE_PROVIDERS["support"]), so it gets the same
limits, batching queue, API key, /health, /ready and /metrics as a model server. Every answered
query is appended to the app's transcript log.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator

from fmkit.apps.support import SupportAssistant, Transcript
from fmkit.data.text_checks import text_problem

TASK = "support"


class QueriesIn(BaseModel):
    model_config = ConfigDict(extra="forbid",
                              json_schema_extra={"examples": [{"queries": ["How do I reset my password?"]}]})

    queries: list[StrictStr] = Field(min_length=1, description="Customer messages, answered in order.")
    session: str | None = Field(None, description="Conversation id written to the transcript.")

    @field_validator("session")
    @classmethod
    def _writable(cls, session: str | None) -> str | None:
        # The transcript is UTF-8 JSON lines: a lone surrogate here would fail the write after answering.
        problem = None if session is None else text_problem(session)
        if problem is not None:
            raise ValueError(problem)  # pydantic prefixes "session: "
        return session


def routes(ctx: Any) -> APIRouter:
    assistant: SupportAssistant = ctx.predictor
    ctx.batcher.register("support", lambda texts: [r.to_dict() for r in assistant.answer_many(texts)])
    router = APIRouter(prefix="/v1/support", tags=["support"])

    @router.post("/answer", summary="Best FAQ answer with a confidence, or a hand-off to a person")
    async def answer(body: QueriesIn) -> dict[str, Any]:
        replies = await ctx.run("support", list(body.queries), "queries")
        transcript: Transcript | None = ctx.extra.get("transcript")  # set after the routes are built
        if transcript is not None:
            from fmkit.apps.support import Reply

            for reply in replies:
                transcript.log(Reply(**reply), session=body.session or "http")
        return {"replies": replies}

    return router


def create_support_app(app_dir: Path | str, settings: Any | None = None, api_key: str | None = None,
                       transcript: Path | str | None = None, embedder: Any | None = None) -> Any:
    """A FastAPI app serving one support app folder (run it with uvicorn); `embedder` replaces the
    app's sentence encoder (tests use a small deterministic one)."""
    from fmkit.inference import server

    server.ROUTE_PROVIDERS.setdefault(TASK, "fmkit.apps.support_http:routes")
    assistant = SupportAssistant.load(app_dir, embedder=embedder)
    app = server.create_app(assistant, settings, api_key=api_key, task=TASK)
    app.state.ctx.extra["transcript"] = Transcript(transcript or Path(app_dir) / "transcripts.jsonl")
    return app
