"""The three kinds of model server, built from tiny random models for the server tests (no network).

classification: a tiny random BERT saved as an fmkit classification model (POST /v1/predict, /v1/embed)
generation:     a tiny random Llama (POST /v1/generate)
support:        a toy FAQ support app with a bag-of-words embedder (POST /v1/support/answer)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from fmkit.config.schema import ServeConfig
from tests.conftest import build_tiny_bert
from tests.media_helpers import build_tiny_llama
from tests.unit.apps_fakes import BagOfWordsEmbedder

TOY_FAQ = """question,answer
How do I reset my password?,Use the Forgot password link.
I forgot my password,Use the Forgot password link.
How do I delete my account?,Settings > Account > Delete.
close my account please,Settings > Account > Delete.
What are your opening hours?,9am to 5pm on weekdays.
When is the shop open?,9am to 5pm on weekdays.
"""


def classification_model(directory: Path) -> Path:
    """A saved fmkit classification model (labels neg, pos) on a tiny random BERT."""
    import torch

    from fmkit.models.backbone import load_tokenizer
    from fmkit.models.classifier import TextClassifier

    backbone = build_tiny_bert(directory / "backbone")
    torch.manual_seed(2)
    out = directory / "model"
    TextClassifier.from_backbone(backbone, ["neg", "pos"], max_length=32).save_pretrained(out, load_tokenizer(backbone))
    return out


def classification_app(directory: Path, api_key: str | None = None, **settings: Any) -> tuple[Any, Any]:
    """(app, predictor) for a tiny classification model."""
    from fmkit.inference.predictor import Predictor
    from fmkit.inference.server import create_app

    predictor = Predictor.load(classification_model(directory), backend="torch")
    return create_app(predictor, ServeConfig(**settings), api_key=api_key), predictor


def generation_app(directory: Path, max_new_tokens: int = 4, **settings: Any) -> tuple[Any, Any]:
    """(app, predictor) for a tiny random causal LM. Requests may ask for up to 1,024 new tokens; the
    predictor caps them at `max_new_tokens` so generated-request runs stay fast (the route is unchanged)."""
    from fmkit.inference.generation import GenerationPredictor
    from fmkit.inference.server import create_app

    class CappedGenerationPredictor(GenerationPredictor):
        def generate(self, prompts: Sequence[str], max_new_tokens: int | None = None,
                     temperature: float | None = None) -> list[str]:
            return super().generate(prompts, min(max_new_tokens or self.max_new_tokens, self.max_new_tokens),
                                    temperature)

        def stream(self, prompt: str, max_new_tokens: int | None = None, temperature: float | None = None,
                   system: str | None = None) -> Iterator[str]:
            return super().stream(prompt, min(max_new_tokens or self.max_new_tokens, self.max_new_tokens),
                                  temperature, system)

    predictor = CappedGenerationPredictor.load(build_tiny_llama(directory / "lm"))
    predictor.max_new_tokens = max_new_tokens
    return create_app(predictor, ServeConfig(**settings), task="generation"), predictor


def support_app(directory: Path, **settings: Any) -> Any:
    """The support app's server on a toy FAQ (transcript in `directory`)."""
    from fmkit.apps.support import build_support
    from fmkit.apps.support_http import create_support_app

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "faq.csv").write_text(TOY_FAQ)
    calibration: list[tuple[str, str | None]] = [("reset password", "Use the Forgot password link."),
                                                  ("delete my account", "Settings > Account > Delete."),
                                                  ("banana bread recipe", None)]
    build_support(directory / "faq.csv", directory / "app", calibration=calibration, embedder=BagOfWordsEmbedder())
    return create_support_app(directory / "app", ServeConfig(**settings), transcript=directory / "transcript.jsonl",
                              embedder=BagOfWordsEmbedder())
