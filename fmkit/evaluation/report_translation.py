"""Report sections of translation runs: BLEU/chrF of the base and the tuned model per direction, and samples
side by side (from RUN_DIR/translation_samples.jsonl). report.py loads this module for translation runs."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from fmkit.evaluation.report import RunFiles, Section, html_table, md_table, register_sections

SAMPLES_FILE = "translation_samples.jsonl"
SHOWN_PER_DIRECTION = 8


def _samples(run: RunFiles) -> list[dict[str, Any]]:
    path = run.run_dir / SAMPLES_FILE
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a damaged line costs that sample, not the report
        if isinstance(record, dict):
            records.append(record)
    return records


def translation_sections(run: RunFiles) -> list[Section]:
    m = run.metrics
    directions = [d for d in m.get("directions", []) if f"chrf_{d}" in m]
    sections: list[Section] = []
    if directions:
        header = ["direction", "sentences", "base chrF", "tuned chrF", "base BLEU", "tuned BLEU"]
        counts = m.get("translated_sentences") or {}
        rows = [[d, counts.get(d), m.get(f"base_chrf_{d}"), m[f"chrf_{d}"], m.get(f"base_bleu_{d}"), m[f"bleu_{d}"]]
                for d in directions]
        note = (f"Greedy decoding of held-out sentences. The base model is shown {m.get('base_few_shot', 0)} worked "
                "examples before each sentence (a pretrained LM needs the pattern); the tuned model is not. "
                "BLEU tokenises Chinese targets into characters (sacrebleu 'zh'); chrF compares character n-grams.")
        sections.append(Section("Translation quality", html_table(header, rows) + f"<p class='muted'>{escape(note)}</p>",
                                md_table(header, rows) + "\n\n" + note))
    samples = _samples(run)
    if samples:
        shown: list[dict[str, Any]] = []
        for d in dict.fromkeys(s.get("direction") for s in samples):
            shown += [s for s in samples if s.get("direction") == d][:SHOWN_PER_DIRECTION]
        header = ["direction", "source", "reference", "base model", "tuned model"]
        rows = [[s.get("direction"), s.get("source"), s.get("reference"), s.get("base_model") or "", s.get("tuned_model")]
                for s in shown]
        sections.append(Section("Translations side by side", f"<div class='scroll'>{html_table(header, rows, numeric_from=9)}"
                                f"</div><p class='muted'>All of them: {SAMPLES_FILE}.</p>", md_table(header, rows)))
    return sections


register_sections("translation", translation_sections)
