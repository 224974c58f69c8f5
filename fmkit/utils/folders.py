"""Which folders fmkit may replace: only missing or empty ones, or ones it wrote itself.

A command that writes a whole folder (an index, an app) swaps the old folder out in one rename
(utils/io.py `atomic_directory`), which deletes everything in it. So before it does, the folder must be
one fmkit created: it holds the file that command writes there, with fmkit's content.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fmkit.errors import FmkitError


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in `path`, or {} when it is missing, unreadable or not an object."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def is_empty_or_missing(folder: Path) -> bool:
    folder = Path(folder)
    return not folder.exists() or (folder.is_dir() and not any(folder.iterdir()))


def refuse_foreign_folder(folder: Path, written_by_fmkit: bool, what: str, flag: str = "--output") -> None:
    """Raise unless `folder` may be replaced whole: missing, empty, or `written_by_fmkit` (it holds `what`)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FmkitError(f"{flag} {folder} is a file; give a folder.")
    if is_empty_or_missing(folder) or written_by_fmkit:
        return
    raise FmkitError(f"{flag} {folder}: the folder is not empty and was not created by fmkit (it holds no {what}), "
                     f"so fmkit will not replace it and delete its files. Choose a new {flag} folder.")
