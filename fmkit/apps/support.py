"""Customer-service assistant: FAQ answers by hybrid retrieval, an optional intent re-ranker, and a
calibrated hand-off to a person.

How a query is answered:
  1. every FAQ entry (one answer; several phrasings of its question may share it) is scored by the
     cosine similarity of sentence embeddings (fmkit's Embedder) to its best phrasing and to its
     answer text, by BM25 over its phrasings, and by an optional intent classifier (trained with
     fmkit's own workflow);
  2. the scores are fused by a weighted sum whose weights are learned on calibration queries
     (support_fusion.py); by default, and whenever fusion was not shown to help, the ranking is
     plain embedding search over the questions;
  3. the confidence is the best phrasing's cosine similarity of the top entry (averaged with the
     classifier's probability of its intent when there is a classifier);
  4. below the threshold, or when the classifier says "out of scope", the reply is a hand-off.
Weights and threshold are calibrated at build time on held-out queries (a calibration file, or
phrasings held out of the FAQ): the threshold maximises the macro F1 of "answer" vs "hand off", where
a query should be handed off when it is out of scope or its top answer is wrong.

App folder: app.json (settings, fusion weights, threshold, calibration numbers), faq.jsonl (entries and
phrasings), vectors.npy (phrasing embeddings, rows grouped by entry), answer_vectors.npy (one row per
entry), intent/ (optional classifier run).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fmkit.apps.bm25 import BM25
from fmkit.apps.support_fusion import EntryScores, FusionWeights, learn_weights, normalise_bm25
from fmkit.errors import DataError, FmkitError
from fmkit.utils.folders import read_json_object, refuse_foreign_folder
from fmkit.utils.io import atomic_directory, atomic_write_json
from fmkit.utils.progress import map_in_chunks

OOS_LABELS = frozenset({"oos", "out_of_scope", "out-of-scope", "none", "other", ""})
APP_KIND = "support"


@dataclass
class FaqEntry:
    id: str
    answer: str
    phrasings: list[str]
    intent: str | None = None


@dataclass
class Settings:
    embedder: str
    candidates: int = 50
    # Extra weights on top of the question embeddings (support_fusion.py): 0 = embeddings alone.
    bm25_weight: float = 0.0
    answer_weight: float = 0.0
    intent_weight: float = 1.0
    threshold: float = 0.0
    calibration: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Settings:
        # Apps built before the learned fusion stored an RRF constant: ignored, as is any retired key.
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in values.items() if k in known})

    @property
    def weights(self) -> FusionWeights:
        return FusionWeights(self.bm25_weight, self.answer_weight, self.intent_weight)


@dataclass
class Candidate:
    entry: int
    fused: float
    cosine: float
    bm25: float
    intent_prob: float | None


@dataclass
class Reply:
    query: str
    answer: str | None
    entry_id: str | None
    intent: str | None
    confidence: float
    handoff: bool
    reason: str | None
    candidates: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- reading FAQ and query files --------------------------------------------------------------------

def _column(df: Any, names: Sequence[str], path: Path, role: str, required: bool = True) -> str | None:
    lowered = {str(c).lower(): str(c) for c in df.columns}
    for name in names:
        if name in lowered:
            return lowered[name]
    if required:
        raise DataError(f"{path}: no {role} column; name one of: {', '.join(names)} "
                        f"(columns present: {', '.join(map(str, df.columns))}).")
    return None


def read_faq(path: Path | str) -> list[FaqEntry]:
    """Rows of (question, answer[, intent][, id]); rows sharing an answer (or id) are phrasings of one entry."""
    from fmkit.data.readers import read_table

    path = Path(path)
    df = read_table(path)
    q_col = _column(df, ("question", "query", "phrasing", "utterance", "text"), path, "question")
    a_col = _column(df, ("answer", "response", "reply"), path, "answer")
    i_col = _column(df, ("intent", "label"), path, "intent", required=False)
    id_col = _column(df, ("id", "faq_id", "entry"), path, "id", required=False)
    entries: dict[str, FaqEntry] = {}
    for row, (question, answer) in enumerate(zip(df[q_col], df[a_col], strict=True), start=2):
        question, answer = str(question).strip(), str(answer).strip()
        if not question or not answer:
            raise DataError(f"{path}: row {row} has an empty {'question' if not question else 'answer'}; "
                            "fill it in or delete the row.")
        key = str(df[id_col].iloc[row - 2]) if id_col else answer
        entry = entries.get(key)
        if entry is None:
            intent = str(df[i_col].iloc[row - 2]).strip() if i_col else None
            entry = entries[key] = FaqEntry(id=key if id_col else str(len(entries)), answer=answer, phrasings=[],
                                            intent=intent or None)
        if question not in entry.phrasings:
            entry.phrasings.append(question)
    if not entries:
        raise DataError(f"{path}: no FAQ rows.")
    return list(entries.values())


def read_queries(path: Path | str) -> list[tuple[str, str | None]]:
    """(query, expected answer / entry id / intent, or None when out of scope) pairs for calibration."""
    from fmkit.data.readers import read_table

    path = Path(path)
    df = read_table(path)
    q_col = _column(df, ("query", "question", "text", "utterance"), path, "query")
    g_col = _column(df, ("answer", "id", "intent", "label", "expected"), path, "expected answer")
    pairs: list[tuple[str, str | None]] = []
    for query, gold in zip(df[q_col], df[g_col], strict=True):
        gold_text = str(gold).strip()
        pairs.append((str(query).strip(), None if gold_text.lower() in OOS_LABELS else gold_text))
    return pairs


# --- the assistant ---------------------------------------------------------------------------------

class SupportAssistant:
    """Answers queries from FAQ entries; `answer(query)` for one, `rank(queries)` for evaluation."""

    def __init__(self, entries: list[FaqEntry], vectors: np.ndarray, embedder: Any, settings: Settings,
                 intent_predictor: Any | None = None, answer_vectors: np.ndarray | None = None) -> None:
        self.entries = entries
        self.settings = settings
        self.embedder = embedder
        self.intent_predictor = intent_predictor
        self.path: Path | None = None  # the app folder, once saved (the server names the model after it)
        # Phrasings are stored grouped by entry so that "best phrasing per entry" is one reduceat.
        self.phrasings = [p for e in entries for p in e.phrasings]
        counts = np.array([len(e.phrasings) for e in entries])
        self.starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        self.vectors = vectors.astype(np.float32)
        if len(self.vectors) != len(self.phrasings):
            raise FmkitError(f"{len(self.vectors)} vectors for {len(self.phrasings)} phrasings: rebuild the app.")
        self.answer_vectors = None if answer_vectors is None else answer_vectors.astype(np.float32)
        if self.answer_vectors is not None and len(self.answer_vectors) != len(entries):
            raise FmkitError(f"{len(self.answer_vectors)} answer vectors for {len(entries)} answers: rebuild the app.")
        self.bm25 = BM25.build(self.phrasings)
        self.by_intent: dict[str, list[int]] = {}
        for i, e in enumerate(entries):
            if e.intent:
                self.by_intent.setdefault(e.intent, []).append(i)

    # loading -------------------------------------------------------------------------------------
    @classmethod
    def load(cls, app_dir: Path | str, embedder: Any | None = None) -> SupportAssistant:
        app_dir = Path(app_dir)
        meta_path = app_dir / "app.json"
        if not meta_path.is_file():
            raise FmkitError(f"{app_dir}: not a support app (no app.json); build one with `fmkit app support build`.")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("kind") != APP_KIND:
            raise FmkitError(f"{app_dir}: app.json is a '{meta.get('kind')}' app, not a support app.")
        settings = Settings.from_dict(meta["settings"])
        entries = [FaqEntry(**json.loads(line)) for line in (app_dir / "faq.jsonl").read_text(encoding="utf-8").splitlines()
                   if line.strip()]
        vectors = np.load(app_dir / "vectors.npy")
        answers_path = app_dir / "answer_vectors.npy"  # absent in apps built before answers were indexed
        answer_vectors = np.load(answers_path) if answers_path.is_file() else None
        if embedder is None:
            from fmkit.inference.embedder import Embedder

            embedder = Embedder.load(settings.embedder)
        predictor = None
        if (app_dir / "intent" / "model").is_dir():
            from fmkit.inference import load_predictor

            predictor = load_predictor(app_dir / "intent" / "model")
        assistant = cls(entries, vectors, embedder, settings, predictor, answer_vectors)
        assistant.path = app_dir
        return assistant

    # ranking -------------------------------------------------------------------------------------
    def rank(self, queries: Sequence[str]) -> list[list[Candidate]]:
        """Fused candidate lists (best first, at most `settings.candidates`) for each query."""
        return self.rank_with_probs(queries)[0]

    def rank_with_probs(self, queries: Sequence[str], chunk: int = 256
                        ) -> tuple[list[list[Candidate]], np.ndarray | None]:
        """Candidates and the intent classifier's probabilities (None without a classifier)."""
        out: list[list[Candidate]] = []
        all_probs: list[np.ndarray] = []
        for start in range(0, len(queries), chunk):
            scores, probs = self.entry_scores(queries[start:start + chunk])
            if probs is not None:
                all_probs.append(probs)
            out.extend(self._candidates(scores))
        return out, (np.concatenate(all_probs) if all_probs else None)

    def entry_scores(self, queries: Sequence[str]) -> tuple[EntryScores, np.ndarray | None]:
        """Every score of every entry for these queries (see support_fusion), and the classifier's probabilities."""
        block = [str(q) for q in queries]
        qv = self.embedder.embed(block)
        question = np.maximum.reduceat(qv @ self.vectors.T, self.starts, axis=1)
        answer = qv @ self.answer_vectors.T if self.answer_vectors is not None else None
        raw_bm25 = np.stack([np.maximum.reduceat(self.bm25.scores(q), self.starts) for q in block]) if block \
            else np.zeros((0, len(self.entries)))
        probs = self.intent_predictor.predict_proba(block) if self.intent_predictor is not None else None
        intent = np.stack([self._intent_scores(row) for row in probs]) if probs is not None and len(block) else None
        return EntryScores(question, normalise_bm25(raw_bm25), answer, intent), probs

    def _intent_scores(self, row: np.ndarray) -> np.ndarray:
        """Each entry gets the classifier's probability of its intent (entries without one get -1)."""
        scores = np.full(len(self.entries), -1.0)
        assert self.intent_predictor is not None
        for label, p in zip(self.intent_predictor.labels, row, strict=True):
            for i in self.by_intent.get(label, ()):
                scores[i] = float(p)
        return scores

    def _candidates(self, scores: EntryScores) -> list[list[Candidate]]:
        n = min(self.settings.candidates, len(self.entries))
        fused = scores.fused(self.settings.weights)
        out = []
        for i, row in enumerate(fused):
            top = np.argsort(-row, kind="stable")[:n]
            intent = scores.intent[i] if scores.intent is not None else None
            out.append([Candidate(int(e), float(row[e]), float(scores.question[i, e]), float(scores.bm25[i, e]),
                                  None if intent is None or intent[e] < 0 else float(intent[e])) for e in top])
        return out

    def confidence(self, candidates: list[Candidate]) -> float:
        if not candidates:
            return 0.0
        top = candidates[0]
        if top.intent_prob is None:
            return top.cosine
        return 0.5 * (top.cosine + top.intent_prob)

    def out_of_scope(self, query_probs: np.ndarray | None) -> bool:
        """The classifier's own verdict, when it was trained with an out-of-scope class."""
        if query_probs is None or self.intent_predictor is None:
            return False
        return str(self.intent_predictor.labels[int(query_probs.argmax())]).lower() in OOS_LABELS

    # answering -----------------------------------------------------------------------------------
    def answer(self, query: str, top_k: int = 5) -> Reply:
        return self.answer_many([query], top_k)[0]

    def answer_many(self, queries: Sequence[str], top_k: int = 5) -> list[Reply]:
        ranked, probs = self.rank_with_probs(queries)
        replies = []
        for i, (query, cands) in enumerate(zip(queries, ranked, strict=True)):
            conf = self.confidence(cands)
            oos = self.out_of_scope(probs[i] if probs is not None else None)
            handoff = oos or conf < self.settings.threshold or not cands
            reason = "out_of_scope" if oos else ("low_confidence" if handoff else None)
            best = self.entries[cands[0].entry] if cands else None
            replies.append(Reply(
                query=query, answer=None if handoff or best is None else best.answer,
                entry_id=best.id if best else None, intent=best.intent if best else None,
                confidence=round(conf, 4), handoff=handoff, reason=reason,
                candidates=[{"id": self.entries[c.entry].id, "score": round(c.fused, 5), "cosine": round(c.cosine, 4),
                             "answer": self.entries[c.entry].answer[:200]} for c in cands[:top_k]],
            ))
        return replies

    def gold_index(self, gold: str | None) -> int | None:
        """Entry index for an expected answer given as entry id, intent or answer text (None: out of scope)."""
        if gold is None:
            return None
        for i, e in enumerate(self.entries):
            if gold in (e.id, e.intent, e.answer):
                return i
        return -1  # in scope but unknown: counts as a wrong answer


class Transcript:
    """Append-only JSONL log of every turn, flushed per line so a crash loses at most the current turn."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def log(self, reply: Reply, session: str = "cli") -> None:
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "session": session, **reply.to_dict()}
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")


class CachedEmbedder:
    """Remembers vectors by text: calibration and evaluation rank the same queries several times."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.cache: dict[str, np.ndarray] = {}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if missing:
            self.cache.update(zip(missing, self.inner.embed(missing), strict=True))
        if not texts:
            return np.asarray(self.inner.embed([]))
        return np.stack([self.cache[t] for t in texts])


# --- calibration -----------------------------------------------------------------------------------

def calibrate_threshold(confidences: np.ndarray, should_answer: np.ndarray) -> dict[str, Any]:
    """Threshold maximising macro F1 of answer vs hand-off (answer when confidence >= threshold)."""
    conf = np.asarray(confidences, dtype=np.float64)
    good = np.asarray(should_answer, dtype=bool)
    if len(conf) == 0:
        raise FmkitError("No held-out queries to calibrate the hand-off threshold on.")
    if good.all() or not good.any():
        # One outcome only: F1 is undefined. All right: hand off only clearly below the weakest right answer;
        # all wrong: always hand off. Either way the note tells the user to add out-of-scope queries.
        threshold = float(conf.min()) - 0.05 if good.all() else float(conf.max()) + 1e-6
        return {"threshold": threshold, "macro_f1": None, "queries": len(conf), "should_answer": int(good.sum()),
                "note": "held-out queries had one outcome only; give --calibration with out-of-scope queries"}
    candidates = np.unique(np.concatenate([conf, [conf.max() + 1e-6]]))
    best = (-1.0, 0.0)
    for t in candidates:
        answered = conf >= t
        f1s = []
        for pred, truth in ((answered, good), (~answered, ~good)):
            tp = float((pred & truth).sum())
            precision = tp / max(pred.sum(), 1)
            recall = tp / max(truth.sum(), 1)
            f1s.append(0.0 if tp == 0 else 2 * precision * recall / (precision + recall))
        score = float(np.mean(f1s))
        if score > best[0]:
            best = (score, float(t))
    return {"threshold": best[1], "macro_f1": round(best[0], 4), "queries": len(conf),
            "should_answer": int(good.sum())}


def outcomes(assistant: SupportAssistant, pairs: Sequence[tuple[str, str | None]]) -> tuple[np.ndarray, np.ndarray]:
    """Confidence of each query and whether answering it would be right (in scope and top-1 correct)."""
    ranked, probs = assistant.rank_with_probs([q for q, _ in pairs])
    conf = np.array([assistant.confidence(c) for c in ranked])
    right = np.zeros(len(pairs), dtype=bool)
    for i, ((_, gold), cands) in enumerate(zip(pairs, ranked, strict=True)):
        g = assistant.gold_index(gold)
        oos = assistant.out_of_scope(probs[i] if probs is not None else None)
        right[i] = g is not None and bool(cands) and cands[0].entry == g and not oos
    return conf, right


def learn_fusion(assistant: SupportAssistant, pairs: Sequence[tuple[str, str | None]]) -> dict[str, Any]:
    """Learn the fusion weights on the labelled in-scope queries (support_fusion.learn_weights) and set them."""
    in_scope = [(q, g) for q, g in pairs if g is not None]
    scores, _ = assistant.entry_scores([q for q, _ in in_scope])
    choice = learn_weights(scores, [g if g is not None else -1 for g in (assistant.gold_index(g) for _, g in in_scope)])
    assistant.settings.bm25_weight = choice.weights.bm25
    assistant.settings.answer_weight = choice.weights.answer
    assistant.settings.intent_weight = choice.weights.intent
    return choice.to_dict()


# --- building ----------------------------------------------------------------------------------------

def check_calibration_answers(entries: list[FaqEntry], pairs: Sequence[tuple[str, str | None]],
                              source: Path | str | None) -> None:
    """Every in-scope calibration query must name an answer of the FAQ: a typo would silently count as a
    wrong answer and bend the learned weights and threshold."""
    known = {key for e in entries for key in (e.id, e.intent, e.answer) if key}
    for i, (query, gold) in enumerate(pairs):
        if gold is not None and gold not in known:
            where = f"{source}: row {i + 2 if Path(str(source)).suffix.lower() in ('.csv', '.tsv') else i + 1}" \
                if source is not None else f"calibration query {i + 1}"
            raise DataError(f"{where} (query {query[:60]!r}) expects answer {gold!r}, which is not an id, intent "
                            "or answer text of the FAQ; correct it, or write 'oos' for an out-of-scope query.")


def hold_out_phrasings(entries: list[FaqEntry], share: float, seed: int) -> tuple[list[FaqEntry], list[tuple[str, str]]]:
    """Move `share` of each multi-phrasing entry's phrasings out of the index as labelled queries."""
    rng = random.Random(seed)
    kept: list[FaqEntry] = []
    held: list[tuple[str, str]] = []
    for e in entries:
        phr = list(e.phrasings)
        rng.shuffle(phr)
        n_out = min(len(phr) - 1, max(1, round(len(phr) * share))) if len(phr) > 1 and share > 0 else 0
        held.extend((p, e.id) for p in phr[:n_out])
        kept.append(FaqEntry(e.id, e.answer, phr[n_out:], e.intent))
    return kept, held


@dataclass
class BuildResult:
    app_dir: Path
    entries: int
    phrasings: int
    calibration: dict[str, Any]
    intent_model: bool


def build_support(faq: Path | str | list[FaqEntry], output: Path | str, *, model: str = "all-MiniLM-L6-v2",
                  intents: Path | str | None = None, calibration: Path | str | list[tuple[str, str | None]] | None = None,
                  holdout: float = 0.2, seed: int = 0, intent_epochs: float = 3, intent_overrides: dict[str, Any] | None = None,
                  embedder: Any | None = None, overwrite: bool = False, tune_fusion: bool = True,
                  **settings: Any) -> BuildResult:
    """Embed the FAQ, optionally train the intent classifier, calibrate the hand-off threshold, save."""
    output = Path(output)
    if output.exists() and any(output.iterdir()) and not overwrite:
        raise FmkitError(f"{output} already exists; pass --overwrite to replace it.")
    # The build swaps the whole folder, so --overwrite replaces only an app fmkit built there.
    refuse_foreign_folder(output, read_json_object(output / "app.json").get("kind") == APP_KIND, "app.json of a support app")
    entries = read_faq(faq) if not isinstance(faq, list) else faq
    if calibration is None:
        index_entries, held = hold_out_phrasings(entries, holdout, seed)
        pairs: list[tuple[str, str | None]] = list(held)
        if not pairs:
            raise FmkitError("Every FAQ entry has a single phrasing, so nothing can be held out to calibrate the "
                             "hand-off threshold: give --calibration FILE (query, expected answer or 'oos').")
    else:
        index_entries = entries
        pairs = read_queries(calibration) if not isinstance(calibration, list) else calibration
        check_calibration_answers(entries, pairs, calibration if not isinstance(calibration, list) else None)
    if embedder is None:
        from fmkit.inference.embedder import Embedder

        embedder = Embedder.load(model)
    model_ref = str(Path(model).resolve()) if Path(model).exists() else model
    embedder = CachedEmbedder(embedder)
    with atomic_directory(output) as tmp:
        predictor = None
        if intents is not None:
            predictor = _train_intents(Path(intents), tmp / "intent", model, intent_epochs, seed, intent_overrides or {})
        cfg = Settings(embedder=model_ref, **settings)
        # Calibrate with the held-out phrasings outside the index, then index every phrasing.
        phrasings = [p for e in index_entries for p in e.phrasings]
        answer_vectors = embedder.embed([e.answer for e in entries])  # entries and index_entries share answers
        probe = SupportAssistant(index_entries, map_in_chunks(embedder.embed, phrasings, "embed FAQ"), embedder, cfg,
                                 predictor, answer_vectors)
        # Phrasings held out of the FAQ are not user queries: they calibrate the threshold, but the fusion weights
        # are learned only from a calibration file (without one the ranking is embeddings alone, the safe default;
        # on StackFAQ weights learned from held-out phrasings lowered nDCG@10, BENCHMARKS.md issue 21).
        fusion = learn_fusion(probe, pairs) if tune_fusion and calibration is not None else {}
        conf, right = outcomes(probe, pairs)
        report = calibrate_threshold(conf, right)
        report.update(fusion)
        report["top1_accuracy_in_scope"] = round(float(right[[g is not None for _, g in pairs]].mean()), 4) \
            if any(g is not None for _, g in pairs) else None
        cfg.threshold = report["threshold"]
        cfg.calibration = report
        final = entries if calibration is None else index_entries
        vectors = probe.vectors if final is index_entries else embedder.embed([p for e in final for p in e.phrasings])
        np.save(tmp / "vectors.npy", vectors.astype(np.float32))
        np.save(tmp / "answer_vectors.npy", np.asarray(answer_vectors, dtype=np.float32))
        (tmp / "faq.jsonl").write_text("".join(json.dumps(asdict(e), ensure_ascii=False) + "\n" for e in final),
                                       encoding="utf-8")
        atomic_write_json(tmp / "app.json", {"kind": APP_KIND, "settings": asdict(cfg),
                                             "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    return BuildResult(output, len(final), sum(len(e.phrasings) for e in final), report, predictor is not None)


def _train_intents(data: Path, run_dir: Path, model: str, epochs: float, seed: int, overrides: dict[str, Any]) -> Any:
    """Fine-tune the intent classifier with fmkit's own training workflow and load its predictor."""
    import fmkit
    from fmkit.inference import load_predictor

    fmkit.train(data=str(data), model=model, epochs=epochs, seed=seed, output=str(run_dir),
                **overrides)
    return load_predictor(run_dir / "model")
