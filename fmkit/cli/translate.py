"""`fmkit translate MODEL "text"`: translate sentences with a model saved by `fmkit train --task translation`.

(`fmkit predict MODEL FILE` translates a whole file, `fmkit serve MODEL` answers POST /v1/translate.)
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from fmkit.errors import FmkitError


def cmd_translate(args: argparse.Namespace) -> int:
    from fmkit.inference.translation import TranslationPredictor

    text = sys.stdin.read() if args.text == "-" else args.text
    sentences = [line.strip() for line in text.splitlines() if line.strip()]
    if not sentences:
        raise FmkitError("Nothing to translate: pass the sentence, or - to read one sentence per line from standard input.")
    predictor = TranslationPredictor.load(args.model)
    directions = [predictor.direction_for(s, args.direction).name for s in sentences]
    outputs = predictor.translate(sentences, args.direction, args.max_new_tokens)
    for sentence, direction, output in zip(sentences, directions, outputs, strict=True):
        if args.json:
            print(json.dumps({"text": sentence, "direction": direction, "translation": output}, ensure_ascii=False))
        else:
            print(output)
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("translate", help="translate sentences with a model trained by --task translation")
    p.add_argument("model", help="a model (or its run directory) saved by `fmkit train --task translation`")
    p.add_argument("text", help="the sentence to translate, or - to read one sentence per line from standard input")
    p.add_argument("--direction", help="'SRC-TGT' (e.g. zh-en); default: the model's only direction, or by the "
                                       "text's script for a model trained both ways")
    p.add_argument("--max-new-tokens", type=int, default=None, help="default: the model's setting (64)")
    p.add_argument("--json", action="store_true", help="one JSON line per sentence: text, direction, translation")
    p.set_defaults(func=cmd_translate)
