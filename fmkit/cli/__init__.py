"""The `fmkit` command: parses arguments, calls the API, maps errors to exit codes. Nothing else.

Each feature lives in its own module here and adds its sub-commands in `register(sub)`;
add the module to COMMAND_MODULES to expose it, and its examples to fmkit/cli/examples.py.

The error boundary in `main`: a problem the user can fix (an FmkitError, an OSError such as a
read-only or full disk, a file that is not UTF-8) prints ONE line `error: ...` naming the path and
the fix and exits 2; anything else is a bug: exit 1, "unexpected", traceback with FMKIT_DEBUG=1.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from fmkit import __version__
from fmkit.errors import FmkitError
from fmkit.utils.clock import command_clock

EXIT_USER_ERROR = 2
EXIT_BUG = 1

COMMAND_MODULES = [
    "fmkit.cli.train_eval_predict",
    "fmkit.cli.runs",
    "fmkit.cli.export",
    "fmkit.cli.serve",
    "fmkit.cli.pretrain",
    "fmkit.cli.media",
    "fmkit.cli.embeddings",
    "fmkit.cli.apps",
    "fmkit.cli.data_tools",
    "fmkit.cli.translate",
]


def _quiet_libraries() -> None:
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import warnings

    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    # ...but not fmkit's own: a renamed config key is the user's to fix, said once, on one line.
    from fmkit.errors import RenamedKeyWarning

    warnings.filterwarnings("once", category=RenamedKeyWarning)
    library_showwarning = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], *args: object, **kwargs: object) -> None:
        if issubclass(category, RenamedKeyWarning):
            print(f"warning: {message}", file=sys.stderr)
        else:
            library_showwarning(message, category, *args, **kwargs)  # type: ignore[arg-type]

    warnings.showwarning = show


def build_parser() -> argparse.ArgumentParser:
    from fmkit.cli.examples import add_examples

    parser = argparse.ArgumentParser(prog="fmkit", description="Adapt a pretrained model to your data, offline.")
    parser.add_argument("--version", action="version", version=f"fmkit {__version__}",
                        help="print the fmkit version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    add_examples(parser)
    return parser


# What each OSError means for the user and how to fix it; the path is printed in front.
_OS_ERROR_FIXES: dict[int, str] = {
    errno.EROFS: "the file system is read-only; write somewhere else (another --output folder)",
    errno.EACCES: "permission denied; check the permissions of this path or write somewhere else",
    errno.EPERM: "operation not permitted here; choose a path you can write to",
    errno.ENOSPC: "no space left on the device; free some space or write to another disk",
    errno.EDQUOT: "disk quota exceeded; free some space or write to another disk",
    errno.EISDIR: "is a folder where a file is expected; give a file path",
    errno.ENOTDIR: "part of this path is a file, not a folder; check the path",
    errno.ENOENT: "no such file or folder; check the path",
    errno.EEXIST: "already exists; remove it or choose another path",
    errno.ENAMETOOLONG: "the name is too long; choose a shorter path",
    errno.EMFILE: "too many open files; raise the limit (`ulimit -n`) or process fewer files at once",
    errno.EADDRINUSE: "the address is already in use; choose another --port or stop the other server",
}


# Errors of a write() call, which carries no file name: they concern what the command writes.
_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


def os_error_message(exc: OSError, args: argparse.Namespace | None = None) -> str:
    """One line for an OSError: the path it concerns, what went wrong and the fix.

    A failed write() (a full disk) carries no file name: then the command's --output is named."""
    fix = _OS_ERROR_FIXES.get(exc.errno or -1) or (exc.strerror or str(exc)).rstrip(".")
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    output = getattr(args, "output", None)
    if not paths and output and exc.errno in _WRITE_ERRNOS:
        paths = [f"{output} (while writing)"]
    return f"{' -> '.join(paths)}: {fix}." if paths else f"{fix}."


def _file_arguments(args: argparse.Namespace) -> Iterator[Path]:
    for value in vars(args).values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str | Path) and str(item) != "-" and Path(item).is_file():
                yield Path(item)


def decode_error_message(exc: UnicodeDecodeError, args: argparse.Namespace) -> str:
    """A UnicodeDecodeError does not say which file it came from: find the file argument that is not
    UTF-8 (the readers' own check names it and the fix), else describe the bytes."""
    from fmkit.data.readers import check_text_file

    for path in _file_arguments(args):
        try:
            check_text_file(path)
        except FmkitError as problem:
            return problem.message
    bad = exc.object[exc.start : exc.start + 4]
    return (f"an input file is not valid UTF-8 (bytes {bad!r} at offset {exc.start}); re-save it as UTF-8, "
            "e.g. `iconv -f latin1 -t utf-8 IN > OUT`.")


@contextmanager
def _background_os_errors() -> Iterator[list[OSError]]:
    """Collect OSErrors of library threads (TensorBoard's event writer on a full disk) instead of letting
    Python print their tracebacks: the same error reaches the command, which reports it in one line."""
    caught: list[OSError] = []
    previous = threading.excepthook

    def hook(hook_args: threading.ExceptHookArgs) -> None:
        if isinstance(hook_args.exc_value, OSError) and not os.environ.get("FMKIT_DEBUG"):
            caught.append(hook_args.exc_value)
        else:
            previous(hook_args)

    threading.excepthook = hook
    try:
        yield caught
    finally:
        threading.excepthook = previous


def main(argv: Sequence[str] | None = None) -> int:
    with command_clock():  # a --time-budget counts from here, imports and parsing included
        return _parse_and_run(argv)


def _parse_and_run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _quiet_libraries()
    with _background_os_errors() as background:
        code = _run_command(args)
    if code == 0:
        for exc in background:  # the command succeeded anyway: still say what was not written
            print(f"warning: {os_error_message(exc)}", file=sys.stderr)
    return code


def _run_command(args: argparse.Namespace) -> int:
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except FmkitError as exc:
        return _fail(exc.message, exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:
        return _fail(os_error_message(exc, args), EXIT_USER_ERROR, exc)
    except UnicodeDecodeError as exc:
        return _fail(decode_error_message(exc, args), EXIT_USER_ERROR, exc)
    except Exception as exc:
        if os.environ.get("FMKIT_DEBUG"):
            raise
        print(f"error: unexpected {type(exc).__name__}: {exc}\n(set FMKIT_DEBUG=1 to see the traceback)",
              file=sys.stderr)
        return EXIT_BUG


def _fail(message: str, exit_code: int, exc: BaseException | None = None) -> int:
    if exc is not None and os.environ.get("FMKIT_DEBUG"):
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    print(f"error: {message}", file=sys.stderr)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
