"""The `fmkit` command: parses arguments, calls the API, maps errors to exit codes. Nothing else.

Each feature lives in its own module here and adds its sub-commands in `register(sub)`;
add the module to COMMAND_MODULES to expose it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from fmkit.errors import FmkitError
from fmkit.utils.clock import command_clock

COMMAND_MODULES = [
    "fmkit.cli.classify",
    "fmkit.cli.runs",
    "fmkit.cli.export",
    "fmkit.cli.serve",
    "fmkit.cli.pretrain",
    "fmkit.cli.media",
    "fmkit.cli.embeddings",
    "fmkit.cli.apps",
]


def _quiet_libraries() -> None:
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import warnings

    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fmkit", description="Adapt a pretrained model to your data, offline.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    with command_clock():  # a --time-budget counts from here, imports and parsing included
        return _run(argv)


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _quiet_libraries()
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except FmkitError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        if os.environ.get("FMKIT_DEBUG"):
            raise
        print(f"error: unexpected {type(exc).__name__}: {exc}\n(set FMKIT_DEBUG=1 to see the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
