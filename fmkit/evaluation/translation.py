"""Translation metrics: corpus BLEU and chrF (sacrebleu), with the tokenisation each target language needs."""

from __future__ import annotations

from collections.abc import Sequence

from fmkit.errors import FmkitError

# BLEU counts word n-grams: Chinese has no spaces, so sacrebleu's "zh" tokenizer splits it into characters
# (and keeps Latin words whole); Japanese/Korean/Thai fall back to characters. chrF needs no tokenizer.
_BLEU_TOKENIZERS = {"zh": "zh", "ja": "char", "ko": "char", "th": "char"}


def translation_scores(hypotheses: Sequence[str], references: Sequence[str], target_language: str) -> dict[str, float]:
    """{'bleu', 'chrf'} (0-100) of the hypotheses against one reference each."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} translations for {len(references)} references")
    if not references:
        return {"bleu": 0.0, "chrf": 0.0}
    try:
        from sacrebleu.metrics import BLEU, CHRF
    except ModuleNotFoundError:
        raise FmkitError("BLEU and chrF need sacrebleu: `pip install sacrebleu` (or `pip install 'fmkit[gemma]'`).") from None
    bleu = BLEU(tokenize=_BLEU_TOKENIZERS.get(target_language, "13a"))
    refs = [list(references)]
    return {"bleu": round(float(bleu.corpus_score(list(hypotheses), refs).score), 2),
            "chrf": round(float(CHRF().corpus_score(list(hypotheses), refs).score), 2)}
