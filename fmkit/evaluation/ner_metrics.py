"""Entity-level NER metrics, computed exactly as seqeval's default (conlleval) mode does.

An entity is a maximal chunk of B-/I- tags of one type (an I-X after O or another type starts a
new chunk, as conlleval reads it); a predicted entity counts only when type, start and end all
match a gold one. Per type and micro-averaged overall P/R/F1, word-level token accuracy, and the
most frequent word-level confusions (gold type -> predicted type, O included).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

Entity = tuple[str, int, int]  # type, first word, last word (inclusive)


def _split(tag: str) -> tuple[str, str]:
    if tag == "O":
        return "O", ""
    prefix, _, kind = tag.partition("-")
    return prefix, kind


def _ends(prev_tag: str, tag: str, prev_type: str, kind: str) -> bool:
    return (prev_tag in ("E", "S") or (prev_tag in ("B", "I") and tag in ("B", "S", "O"))
            or (prev_tag not in ("O", ".") and prev_type != kind))


def _starts(prev_tag: str, tag: str, prev_type: str, kind: str) -> bool:
    return (tag in ("B", "S") or (prev_tag in ("E", "S", "O") and tag in ("E", "I"))
            or (tag not in ("O", ".") and prev_type != kind))


def get_entities(tags: Sequence[str]) -> list[Entity]:
    """Chunks of one tag sequence, seqeval's get_entities semantics."""
    entities: list[Entity] = []
    prev_tag, prev_type, begin = "O", "", 0
    for i, tag in enumerate([*tags, "O"]):
        t, kind = _split(tag)
        if _ends(prev_tag, t, prev_type, kind):
            entities.append((prev_type, begin, i - 1))
        if _starts(prev_tag, t, prev_type, kind):
            begin = i
        prev_tag, prev_type = t, kind
    return entities


def _prf(tp: int, n_pred: int, n_true: int) -> dict[str, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_true if n_true else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f}


def ner_metrics(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], top_confusions: int = 10
                ) -> dict[str, Any]:
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted")
    true_ents: set[tuple[int, Entity]] = set()
    pred_ents: set[tuple[int, Entity]] = set()
    correct_tokens = total_tokens = 0
    confusions: Counter[tuple[str, str]] = Counter()
    for s, (g, p) in enumerate(zip(gold, pred, strict=True)):
        if len(g) != len(p):
            raise ValueError(f"sentence {s}: {len(g)} gold tags but {len(p)} predicted")
        true_ents.update((s, e) for e in get_entities(g))
        pred_ents.update((s, e) for e in get_entities(p))
        for gt, pt in zip(g, p, strict=True):
            total_tokens += 1
            correct_tokens += gt == pt
            g_type, p_type = _split(gt)[1] or "O", _split(pt)[1] or "O"
            if g_type != p_type:
                confusions[(g_type, p_type)] += 1
    types = sorted({e[0] for _, e in true_ents} | {e[0] for _, e in pred_ents})
    per_type = {}
    for kind in types:
        t = {x for x in true_ents if x[1][0] == kind}
        p_ = {x for x in pred_ents if x[1][0] == kind}
        per_type[kind] = {**_prf(len(t & p_), len(p_), len(t)), "support": len(t)}
    overall = _prf(len(true_ents & pred_ents), len(pred_ents), len(true_ents))
    return {
        **overall,
        "token_accuracy": correct_tokens / total_tokens if total_tokens else 0.0,
        "per_type": per_type,
        "num_entities": len(true_ents),
        "num_predicted": len(pred_ents),
        "num_sentences": len(gold),
        "worst_confusions": [{"gold": g, "predicted": p, "count": n} for (g, p), n in confusions.most_common(top_confusions)],
    }


def format_ner_report(metrics: dict[str, Any]) -> str:
    lines = [f"{'type':<20}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
    for kind, m in metrics["per_type"].items():
        lines.append(f"{kind:<20}{m['precision']:>10.4f}{m['recall']:>10.4f}{m['f1']:>10.4f}{m['support']:>10}")
    lines.append(f"{'overall (micro)':<20}{metrics['precision']:>10.4f}{metrics['recall']:>10.4f}{metrics['f1']:>10.4f}"
                 f"{metrics['num_entities']:>10}")
    lines.append(f"token accuracy {metrics['token_accuracy']:.4f}")
    if metrics["worst_confusions"]:
        lines.append("worst confusions (gold -> predicted: words)")
        lines.extend(f"  {c['gold']} -> {c['predicted']}: {c['count']}" for c in metrics["worst_confusions"])
    return "\n".join(lines) + "\n"
