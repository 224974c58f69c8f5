"""`fmkit generate | transcribe`, and the speech / generation pieces `fmkit predict` and `fmkit train` use."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fmkit.errors import FmkitError


def cmd_generate(args: argparse.Namespace) -> int:
    from fmkit.inference.generation import GenerationPredictor

    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    if not prompt.strip():
        raise FmkitError("Empty prompt: pass the text to continue, or - to read it from standard input.")
    predictor = GenerationPredictor.load(args.model)
    out = sys.stdout
    for piece in predictor.stream(prompt, args.max_new_tokens, args.temperature, args.system):
        out.write(piece)
        out.flush()  # token by token, as the model writes
    out.write("\n")
    out.flush()
    return 0


def cmd_transcribe(args: argparse.Namespace) -> int:
    from fmkit.inference.speech import Transcriber, list_audio

    paths = [p for source in args.audio for p in list_audio(Path(source))]
    transcriber = Transcriber(beam_size=args.beam_size)
    for item in transcriber.transcribe(paths):
        if args.json:
            print(json.dumps({"path": item.path, "text": item.text, "seconds": item.seconds}, ensure_ascii=False))
        elif len(paths) > 1:
            print(f"{item.path}\t{item.text}")
        else:
            print(item.text)
        sys.stdout.flush()
    return 0


def transcribed_records(predictor: Any, source: Path) -> Iterator[dict[str, Any]]:
    """`fmkit predict MODEL --audio FILE|FOLDER`: each recording is transcribed, then the text is predicted."""
    from fmkit.inference.speech import Transcriber, list_audio

    transcriber = Transcriber()
    for item in transcriber.transcribe(list_audio(source)):
        record = predictor.predict([item.text])[0]
        yield {"audio": item.path, "text": item.text, **record}


def print_generation_result(result: Any) -> None:
    from fmkit.workflows.generation import describe

    print(f"run: {result.run_dir}")
    print(describe(result.metrics))
    print(f"before/after samples: {result.run_dir / 'samples.txt'}")
    print(f"model saved to {result.run_dir / 'model'}  (try: fmkit generate {result.run_dir / 'model'} \"...\")")


def register(sub: Any) -> None:
    p = sub.add_parser("generate", help="stream a generative model's answer to a prompt")
    p.add_argument("model", help="a model saved by `fmkit train --task generation`, a causal-LM folder, "
                                 "or SmolLM2-135M-Instruct")
    p.add_argument("prompt", help="the prompt (chat template applied), or - to read it from standard input")
    p.add_argument("--max-new-tokens", type=int, default=None, help="default: the model's setting (64)")
    p.add_argument("--temperature", type=float, default=None, help="0 = greedy (default: the model's setting)")
    p.add_argument("--system", help="a system message placed before the prompt")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("transcribe", help="speech to text with Whisper tiny.en (offline)")
    p.add_argument("audio", nargs="+", help="audio files or folders (WAV, FLAC, OGG, MP3)")
    p.add_argument("--json", action="store_true", help="one JSON line per file: path, text, seconds")
    p.add_argument("--beam-size", type=int, default=1, help="beam search width (1 = greedy, fastest)")
    p.set_defaults(func=cmd_transcribe)
