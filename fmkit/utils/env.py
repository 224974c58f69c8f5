"""Facts about this machine and its libraries, recorded with every run."""

from __future__ import annotations

import os
import platform
import socket
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

_PACKAGES = ("fmkit", "torch", "transformers", "accelerate", "tokenizers", "safetensors", "numpy", "pandas",
             "peft", "onnxruntime")


def library_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def host_info() -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpu_count": os.cpu_count(),
    }


def fmkit_cache() -> Path:
    """fmkit's cache folder: $FMKIT_CACHE_DIR, else $XDG_CACHE_HOME/fmkit, else ~/.cache/fmkit.

    ($FMKIT_CACHE, the name an earlier version read for converted models, is still honoured.)"""
    for variable in ("FMKIT_CACHE_DIR", "FMKIT_CACHE"):
        if os.environ.get(variable):
            return Path(os.environ[variable]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fmkit"
