"""NER batches: words -> sub-tokens with the label on each word's first sub-token (-100 elsewhere).

A sentence longer than `max_length` sub-tokens is never truncated: it is cut into overlapping
windows (`stride` sub-tokens shared by neighbours) and at prediction time each word takes the
label from the window in which it sits farthest from an edge, i.e. with the most context.

Chinese and Japanese come one character per word (CoNLL, or `split_words` on raw text). A SentencePiece
tokenizer (XLM-R's, multilingual-e5-small's) would write each such word as "▁" + character, two sub-tokens
for most characters; `_CjkPieces` encodes them as running text instead, one sub-token per character.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from fmkit.data.conll import is_cjk_word
from fmkit.data.tasks.classification import IndexDataset, LengthGroupedBatches
from fmkit.errors import DataError

IGNORE = -100


def tag_labels(entity_types: Sequence[str]) -> list[str]:
    """O first, then B-/I- per type in sorted order: stable ids for a given set of types."""
    return ["O", *[f"{p}-{t}" for t in sorted(set(entity_types)) for p in ("B", "I")]]


def bio_decode(probs: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """The most probable tag sequence in which every I-X follows B-X or I-X (Viterbi over log-probabilities).

    Per-word argmax tags each word alone; a word it calls I-ORG after an O (or after a B-LOC) opens a span
    that no gold span can match, and a span cut in two by one uncertain word yields two wrong entities. Under
    the constraint the word takes the best tag that fits its neighbours' best tags too.
    Tags other than O / B-X / I-X (another scheme) are left unconstrained.
    """
    n, k = probs.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    kinds = [(t[:2], t[2:]) if t[:2] in ("B-", "I-") else ("", t) for t in labels]
    # allowed[a, b]: tag b may follow tag a; the first word may not start with I-.
    allowed = np.ones((k, k), dtype=bool)
    start = np.ones(k, dtype=bool)
    for b, (prefix, kind) in enumerate(kinds):
        if prefix == "I-":
            start[b] = False
            allowed[:, b] = [kinds[a][1] == kind and kinds[a][0] in ("B-", "I-") for a in range(k)]
    transition = np.where(allowed, 0.0, -np.inf)
    scores = np.log(np.clip(probs.astype(np.float64), 1e-12, None))
    best = np.where(start, scores[0], -np.inf)
    back = np.zeros((n, k), dtype=np.int64)
    for i in range(1, n):
        total = best[:, None] + transition  # (from, to)
        back[i] = total.argmax(0)
        best = total.max(0) + scores[i]
    path = np.zeros(n, dtype=np.int64)
    path[-1] = int(best.argmax())
    for i in range(n - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    return path


@dataclass
class NerEncoded:
    input_ids: list[list[int]]     # one row per window
    labels: list[list[int]]        # same shape; IGNORE on special tokens and non-first sub-tokens
    first_word: list[list[int]]    # same shape; the word index where a word starts, else -1
    sentence: np.ndarray           # window -> sentence index
    num_words: list[int]           # per sentence

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.input_ids), dtype=np.int64, count=len(self.input_ids))

    def __len__(self) -> int:
        return len(self.input_ids)


def encode_words(tokenizer: object, sentences: Sequence[Sequence[str]], max_length: int, stride: int | None = None,
                 tags: Sequence[Sequence[str]] | None = None, labels: Sequence[str] | None = None) -> NerEncoded:
    if not getattr(tokenizer, "is_fast", False):
        raise DataError("NER needs a fast (Rust) tokenizer for word alignment; the model folder needs a tokenizer.json.")
    stride = max(0, min(stride if stride is not None else max_length // 4, max_length // 2 - 2))
    label_id = {label: i for i, label in enumerate(labels or [])}
    head, tail = _special_tokens(tokenizer)
    room = max(1, max_length - len(head) - len(tail))  # sub-tokens of words per window
    stride = min(stride, room - 1)
    pieces = _CjkPieces(tokenizer)
    out = NerEncoded([], [], [], np.zeros(0, dtype=np.int64), [len(s) for s in sentences])
    owners: list[int] = []
    step = 2048
    for start in range(0, len(sentences), step):
        chunk = [list(s) for s in sentences[start : start + step]]
        # Whole sentences, no special tokens: the windows are cut below, after CJK characters lost their
        # lone "▁" pieces, so that a window holds max_length sub-tokens of what the model sees.
        enc = tokenizer(chunk, is_split_into_words=True, add_special_tokens=False, truncation=False,  # type: ignore[operator]
                        return_offsets_mapping=True, return_attention_mask=False, return_token_type_ids=False,
                        padding=False, verbose=False)
        for i, words in enumerate(chunk):
            sent = start + i
            ids, word_ids, offsets = pieces.apply(words, enc["input_ids"][i], enc.word_ids(i), enc["offset_mapping"][i])
            for lo, hi in _window_ranges(len(ids), room, stride):
                row_ids = [*head, *ids[lo:hi], *tail]
                row_words = [None] * len(head) + word_ids[lo:hi] + [None] * len(tail)
                row_offsets = [(0, 0)] * len(head) + offsets[lo:hi] + [(0, 0)] * len(tail)
                first = [wid if wid is not None and off[0] == 0 else -1
                         for wid, off in zip(row_words, row_offsets, strict=True)]
                # A word the tokenizer splits into pieces all starting at 0 (rare) counts once.
                for p in range(1, len(first)):
                    if first[p] >= 0 and first[p] == row_words[p - 1]:
                        first[p] = -1
                row_labels = [IGNORE] * len(row_ids)
                if tags is not None:
                    for p, wid in enumerate(first):
                        if wid >= 0:
                            tag = tags[sent][wid]
                            if tag not in label_id:
                                raise DataError(f"tag {tag!r} does not occur in the training data; known: "
                                                f"{', '.join(label_id)}.")
                            row_labels[p] = label_id[tag]
                out.input_ids.append(row_ids)
                out.labels.append(row_labels)
                out.first_word.append(first)
                owners.append(sent)
    out.sentence = np.asarray(owners, dtype=np.int64)
    return out


def _window_ranges(n: int, room: int, stride: int) -> list[tuple[int, int]]:
    """[lo, hi) sub-token ranges of at most `room`, neighbours sharing `stride`: the windows a fast tokenizer
    cuts with truncation + return_overflowing_tokens + stride (one empty window for an empty sentence)."""
    ranges = [(0, min(n, room))]
    while ranges[-1][1] < n:
        lo = ranges[-1][0] + room - stride
        ranges.append((lo, min(n, lo + room)))
    return ranges


def _special_tokens(tokenizer: object) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after a single sequence ([CLS] / [SEP], <s> / </s>)."""
    enc = tokenizer([["a"]], is_split_into_words=True)  # type: ignore[operator]
    ids, word_ids = list(enc["input_ids"][0]), enc.word_ids(0)
    inside = [p for p, w in enumerate(word_ids) if w is not None]
    if not inside:
        return ids, []
    return ids[: inside[0]], ids[inside[-1] + 1 :]


class _CjkPieces:
    """One sub-token per CJK character for SentencePiece (Metaspace) tokenizers such as XLM-R's.

    Given pre-split words, such a tokenizer writes every word as if a space came before it: "▁" + word.
    Few CJK characters have a "▁X" piece (30 of the 20,992 common Han in XLM-R's vocabulary, against 7,688
    bare ones), so almost every character became two pieces, a lone "▁" (the one that got the label) and
    the character: twice the sub-tokens, half the context per window, and the label on a piece that is
    the same for every character. Chinese and Japanese are written without spaces, so a word made only of
    CJK characters is encoded as in running text: the lone "▁" is dropped and "▁X" becomes "X" when the
    vocabulary has it. Other words (Latin words and numbers inside Chinese text, all of English) and
    tokenizers without "▁" (WordPiece: BERT, MiniLM) are left exactly as the tokenizer encodes them.
    """

    MARK = "\u2581"

    def __init__(self, tokenizer: object) -> None:
        self.backend = tokenizer.backend_tokenizer  # type: ignore[attr-defined]
        self.lone: int | None = self.backend.token_to_id(self.MARK)
        self.bare: dict[int, int] = {}  # id of "▁X" -> id of "X", filled as words come
        self.known: dict[str, bool] = {}

    def _is_cjk(self, word: str) -> bool:
        known = self.known.get(word)
        if known is None:
            known = self.known[word] = is_cjk_word(word)
        return known

    def _bare(self, piece: int) -> int:
        found = self.bare.get(piece)
        if found is None:
            token = self.backend.id_to_token(piece)
            found = piece
            if isinstance(token, str) and token.startswith(self.MARK) and len(token) > 1:
                bare = self.backend.token_to_id(token[1:])
                found = piece if bare is None else int(bare)
            self.bare[piece] = found
        return found

    def apply(self, words: Sequence[str], ids: Sequence[int], word_ids: Sequence[int | None],
              offsets: Sequence[tuple[int, int]]) -> tuple[list[int], list[int | None], list[tuple[int, int]]]:
        if self.lone is None or not any(self._is_cjk(w) for w in words):
            return list(ids), list(word_ids), [tuple(o) for o in offsets]  # type: ignore[misc]
        out_ids: list[int] = []
        out_words: list[int | None] = []
        out_offsets: list[tuple[int, int]] = []
        for p, (piece, wid) in enumerate(zip(ids, word_ids, strict=True)):
            if wid is not None and self._is_cjk(words[wid]):
                first = p == 0 or word_ids[p - 1] != wid
                last = p + 1 == len(ids) or word_ids[p + 1] != wid
                if first and piece == self.lone and not last:
                    continue  # "▁" before the character's own piece
                if first:
                    piece = self._bare(piece)  # "▁X" -> "X"
            out_ids.append(piece)
            out_words.append(wid)
            out_offsets.append((int(offsets[p][0]), int(offsets[p][1])))
        return out_ids, out_words, out_offsets


class NerCollator:
    def __init__(self, encoded: NerEncoded, pad_id: int) -> None:
        self.encoded, self.pad_id = encoded, pad_id

    def __call__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        rows = [self.encoded.input_ids[i] for i in indices]
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        labels = np.full((len(rows), width), IGNORE, dtype=np.int64)
        for r, i in enumerate(indices):
            n = len(rows[r])
            ids[r, :n], mask[r, :n], labels[r, :n] = rows[r], 1, self.encoded.labels[i]
        return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask),
                "labels": torch.from_numpy(labels), "index": torch.as_tensor(indices, dtype=torch.long)}


def make_ner_loader(encoded: NerEncoded, pad_id: int, batch_size: int, seed: int, shuffle: bool
                    ) -> torch.utils.data.DataLoader[int]:
    sampler = LengthGroupedBatches(encoded.lengths, batch_size, seed, shuffle=shuffle)
    return torch.utils.data.DataLoader(IndexDataset(len(encoded)), batch_sampler=sampler,
                                       collate_fn=NerCollator(encoded, pad_id))


def merge_windows(encoded: NerEncoded, window_probs: Sequence[np.ndarray], num_labels: int) -> list[np.ndarray]:
    """Per sentence, (num_words, num_labels) probabilities; each word from its most central window.

    A word with no sub-token at all (the tokenizer dropped it) gets probability 1 for label 0 (O).
    """
    out = [np.zeros((n, num_labels), dtype=np.float32) for n in encoded.num_words]
    for arr in out:
        arr[:, 0] = 1.0
    best = [np.full(n, -1, dtype=np.int64) for n in encoded.num_words]
    for w, probs in enumerate(window_probs):
        sent = int(encoded.sentence[w])
        first = encoded.first_word[w]
        n = len(first)
        for p, wid in enumerate(first):
            if wid < 0:
                continue
            centrality = min(p, n - 1 - p)
            if centrality > best[sent][wid]:
                best[sent][wid] = centrality
                out[sent][wid] = probs[p]
    return out
