"""Label sets that differ: labels of one file (an eval or test file) that another (the training data, or a
saved model) never had, and the other way round.

Real test files differ from training more often than benchmarks suggest: a class too rare to be in the
training split, an out-of-scope class the model was never meant to learn, or combined labels such as
`flight#airfare` written by annotators when a text has two intents. `fmkit doctor --eval` lists the
differences, `fmkit eval --unknown-labels` decides what to do with such rows, and both recognise combined
labels, which mean the data is multi-label (`--task multilabel`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass

# What annotators put between the labels of a text with several: ATIS writes `flight#airfare`, exports of
# multi-label tools `a|b` or `a+b`. Only a label whose every part is itself a known label counts as combined,
# so `C++` or `Q&A` never do.
COMBINED_LABEL_SEPARATORS = re.compile(r"\s*[#|+]\s*")
UNKNOWN_LABEL_FLAGS = ("error", "wrong", "skip")


def combined_label_parts(label: str, known: Collection[str]) -> tuple[str, ...] | None:
    """The known labels `label` joins (`flight#airfare` -> ('flight', 'airfare')), or None when it is not
    two or more known labels joined by one of # | +."""
    parts = tuple(p for p in COMBINED_LABEL_SEPARATORS.split(label.strip()))
    if len(parts) < 2 or not all(p in known for p in parts):
        return None
    return parts


@dataclass(frozen=True)
class LabelSetDifference:
    """How the labels of some rows compare with a reference label set (training's, or a model's)."""

    unknown: dict[str, int]  # label -> rows carrying it, for labels absent from the reference; most rows first
    absent: list[str]  # reference labels no row carries (sorted)
    combined: dict[str, tuple[str, ...]]  # the unknown labels that join reference labels, with their parts

    @property
    def unknown_rows(self) -> int:
        return sum(self.unknown.values())

    def as_dict(self) -> dict[str, object]:
        return {"unknown": dict(self.unknown), "unknown_rows": self.unknown_rows, "absent": list(self.absent),
                "combined": {label: list(parts) for label, parts in self.combined.items()}}


def label_set_difference(reference: Collection[str], labels: Sequence[str]) -> LabelSetDifference:
    """Compare the labels of some rows (`labels`, one per row) with `reference`."""
    reference = set(reference)
    counts = Counter(label for label in labels if label not in reference)
    unknown = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    combined = {label: parts for label in unknown if (parts := combined_label_parts(label, reference)) is not None}
    return LabelSetDifference(unknown=unknown, absent=sorted(reference - set(labels)), combined=combined)


def shown_counts(counts: dict[str, int], limit: int = 10) -> str:
    """'a' (3 rows), 'b' (1 row), ... and 4 more."""
    items = [f"{label!r} ({n} row{'s' if n != 1 else ''})" for label, n in list(counts.items())[:limit]]
    more = f" and {len(counts) - limit} more" if len(counts) > limit else ""
    return ", ".join(items) + more


def multilabel_hint(diff: LabelSetDifference) -> str:
    """A sentence pointing to --task multilabel when some unknown labels are combined labels ('' otherwise)."""
    if not diff.combined:
        return ""
    label, parts = next(iter(diff.combined.items()))
    others = len(diff.combined) - 1
    more = f" (and {others} other combined label{'s' if others != 1 else ''})" if others else ""
    return (f"{label!r} combines the labels {' and '.join(repr(p) for p in parts)}{more}: if a text can have "
            "several labels, train with --task multilabel, which reads a|b as two labels.")


def unknown_labels_message(diff: LabelSetDifference, source: str, rows: int) -> str:
    """`fmkit eval`'s refusal by default: which labels, how many rows, and the ways forward."""
    n = len(diff.unknown)
    hint = multilabel_hint(diff)
    return (f"{source}: {n} label{'s' if n != 1 else ''} the model was never trained on, on {diff.unknown_rows} of "
            f"{rows} rows: {shown_counts(diff.unknown)}. To score this file anyway, pass --unknown-labels wrong "
            "(those rows count as errors: the numbers to report for the whole file) or --unknown-labels skip "
            f"(those rows are left out and counted).{' ' + hint if hint else ''}")
