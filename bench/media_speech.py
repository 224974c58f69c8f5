"""Speech input: word error rate and speed of `fmkit transcribe` (Whisper tiny.en, CTranslate2) on espeak-ng audio.

The sentences are customer requests written for this benchmark; espeak-ng speaks them (a synthetic
voice: easier than real callers, so read the WER as a floor). Reports WER (word-level edit distance
over reference words, lower-cased, punctuation dropped) and the real-time factor (seconds of compute
per second of audio, model load excluded).

usage: python bench/media_speech.py
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SENTENCES = [
    "Where is my parcel? It has not arrived yet.",
    "I would like to return the shoes I bought last week.",
    "Can you tell me when my refund will be paid?",
    "My card was charged twice for the same order.",
    "Do you ship to Spain and Italy?",
    "The blender I received is broken.",
    "How much does express delivery cost?",
    "I forgot my password and cannot log in.",
    "Please cancel my order from this morning.",
    "Is there a student discount on laptops?",
]


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def edit_distance(a: list[str], b: list[str]) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def main() -> None:
    from fmkit.inference.speech import Transcriber

    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is needed: apt-get install espeak-ng")
    with tempfile.TemporaryDirectory() as tmp_name:
        paths = []
        for i, sentence in enumerate(SENTENCES):
            path = Path(tmp_name) / f"{i:02d}.wav"
            subprocess.run(["espeak-ng", "-w", str(path), sentence], check=True, capture_output=True)
            paths.append(path)
        start = time.perf_counter()
        transcriber = Transcriber()
        load_s = time.perf_counter() - start
        start = time.perf_counter()
        results = list(transcriber.transcribe(paths))
        compute_s = time.perf_counter() - start
    errors = sum(edit_distance(words(r.text), words(s)) for r, s in zip(results, SENTENCES, strict=True))
    total = sum(len(words(s)) for s in SENTENCES)
    audio_s = sum(r.seconds for r in results)
    print(json.dumps({
        "clips": len(results), "audio_seconds": round(audio_s, 1), "wer": round(errors / total, 4),
        "exact_sentences": sum(words(r.text) == words(s) for r, s in zip(results, SENTENCES, strict=True)),
        "model_load_s": round(load_s, 2), "compute_s": round(compute_s, 2),
        "real_time_factor": round(compute_s / audio_s, 3),
        "examples": [{"said": s, "heard": r.text} for r, s in list(zip(results, SENTENCES, strict=True))[:3]],
    }, indent=2))


if __name__ == "__main__":
    main()
