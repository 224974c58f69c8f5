"""`fmkit suggest`: which unlabelled texts a saved classifier would learn most from, ranked for labelling.

The model scores the pool (its probabilities; its own vectors for diversity); evaluation/selection.py picks.
Diversity and mix count the texts the model was trained on as already covered: they come from --labelled, or
from the training file its run directory's config.yaml names, when that file is still there.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from fmkit.data.records import DocRecord, iter_records
from fmkit.errors import DataError, ModelError
from fmkit.evaluation.selection import (
    Picks,
    entropy_uncertainty,
    k_center_greedy,
    margin_uncertainty,
    mixed_selection,
    top_uncertain,
)

Strategy = Literal["uncertainty", "diversity", "mix"]
Uncertainty = Literal["margin", "entropy"]


@dataclass(frozen=True)
class Suggestion:
    rank: int
    id: str
    text: str
    guess: str  # the model's label for it now
    confidence: float  # the model's probability of that label
    score: float  # uncertainty (uncertainty, mix) or distance to what is covered (diversity)
    reason: str

    def record(self) -> dict[str, object]:
        return {"rank": self.rank, "id": self.id, "text": self.text, "guess": self.guess,
                "confidence": round(self.confidence, 4), "score": round(self.score, 4), "reason": self.reason}


@dataclass
class SuggestResult:
    suggestions: list[Suggestion]
    pool_size: int
    already_labelled: int  # pool texts skipped because the labelled set holds them
    labelled_source: str | None  # what diversity counted as covered


def load_classifier(model: Path | str, batch_size: int) -> object:
    from fmkit.inference.predictor import Predictor

    try:
        predictor = Predictor.load(model, batch_size=batch_size)
    except ModelError as exc:
        if "not a classification model" not in exc.message:
            raise
        raise ModelError(f"{exc.message} fmkit suggest ranks texts for a text classifier: give one trained with "
                         "`fmkit train --data labelled.csv` (the default task).") from None
    if predictor.pair_input:
        raise ModelError(f"{model}: this classifier reads text pairs; fmkit suggest ranks single texts.")
    return predictor


def read_pool(pool: Path | str, text_column: str | None, id_column: str | None) -> list[DocRecord]:
    if str(pool) != "-" and not Path(pool).exists():
        raise DataError(f"{pool}: file not found.")
    records = [r for r in iter_records(pool, text_column, id_column) if r.text.strip()]
    if not records:
        raise DataError(f"{pool}: no texts to choose from. Give one text per line (.txt), or a CSV/JSONL/Parquet "
                        "file with a text column (--text-column).")
    return records


def labelled_texts(model: Path | str, labelled: Path | None) -> tuple[list[str], str | None]:
    """The texts already labelled: --labelled, else the training file of the model's run (when it exists)."""
    from fmkit.data.labeled import read_labeled
    from fmkit.models.meta import saved_model_dir

    if labelled is not None:
        return read_labeled(labelled).texts, str(labelled)
    config = saved_model_dir(model).parent / "config.yaml"
    if not config.is_file():
        return [], None
    import yaml

    data = (yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("data") or {}
    train = data.get("train")
    if not train or not Path(train).is_file():
        return [], None
    try:
        return read_labeled(train, data.get("text_column"), data.get("label_column")).texts, str(train)
    except DataError:
        return [], None  # the file changed since training: diversity then starts from nothing


def suggest(model: Path | str, pool: Path | str, n: int, strategy: Strategy = "mix",
            uncertainty: Uncertainty = "margin", text_column: str | None = None, id_column: str | None = None,
            labelled: Path | None = None, batch_size: int = 64) -> SuggestResult:
    if n < 1:
        raise DataError(f"-n {n}: ask for at least one text.")
    predictor = load_classifier(model, batch_size)
    records = read_pool(pool, text_column, id_column)
    known, known_source = labelled_texts(model, labelled)
    seen = set(known)
    fresh = [r for r in records if r.text not in seen]
    if not fresh:
        raise DataError(f"{pool}: every text in it is already in the labelled set ({known_source}); give texts "
                        "that are not labelled yet.")
    texts = [r.text for r in fresh]
    probs = predictor.predict_proba(texts)  # type: ignore[attr-defined]
    doubt = entropy_uncertainty(probs) if uncertainty == "entropy" else margin_uncertainty(probs)
    picks: Picks
    if strategy == "uncertainty":
        picks = top_uncertain(doubt, n)
    else:
        vectors = predictor.embed(texts)  # type: ignore[attr-defined]
        seeds = predictor.embed(known) if known else None  # type: ignore[attr-defined]
        picks = (k_center_greedy(vectors, n, seeds) if strategy == "diversity"
                 else mixed_selection(vectors, doubt, n, seeds))
    labels: list[str] = list(predictor.labels)  # type: ignore[attr-defined]
    suggestions = []
    for rank, (index, score) in enumerate(zip(picks.index.tolist(), picks.score.tolist(), strict=True), start=1):
        row = probs[index]
        top = np.argsort(-row)[:2]
        guess = labels[int(top[0])]
        why = explain(strategy, uncertainty, labels, row, top, float(doubt[index]), picks, rank - 1)
        suggestions.append(Suggestion(rank, fresh[index].id, texts[index], guess, float(row[top[0]]), float(score), why))
    return SuggestResult(suggestions, len(records), len(records) - len(fresh), known_source)


def explain(strategy: Strategy, uncertainty: Uncertainty, labels: list[str], row: np.ndarray, top: np.ndarray,
            doubt: float, picks: Picks, position: int) -> str:
    if len(top) > 1:
        unsure = (f"torn between '{labels[int(top[0])]}' {row[top[0]]:.2f} and '{labels[int(top[1])]}' "
                  f"{row[top[1]]:.2f}")
    else:
        unsure = f"'{labels[int(top[0])]}' {row[top[0]]:.2f}"
    if uncertainty == "entropy":
        unsure += f" (entropy {doubt:.2f} of the maximum)"
    if strategy == "uncertainty":
        return unsure
    distance = picks.distance[position] if picks.distance is not None else float("nan")
    spread = f"cosine distance {distance:.2f} from the labelled texts and earlier picks"
    return spread if strategy == "diversity" else f"{unsure}; {spread}"


def print_summary(result: SuggestResult, strategy: Strategy) -> None:
    """One line on stderr (stdout may carry the suggestions)."""
    parts = [f"{len(result.suggestions)} of {result.pool_size} pool texts suggested ({strategy})"]
    if result.already_labelled:
        parts.append(f"{result.already_labelled} skipped as already labelled")
    if strategy != "uncertainty":
        parts.append(f"covered: {result.labelled_source}" if result.labelled_source
                     else "no labelled set found (pass --labelled FILE to count it as covered)")
    print("; ".join(parts), file=sys.stderr)


__all__ = ["SuggestResult", "Suggestion", "suggest"]
