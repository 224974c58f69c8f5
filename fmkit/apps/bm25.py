"""A small Okapi BM25 index over short texts (FAQ phrasings), with an inverted index in numpy.

Written here instead of pulling `rank_bm25` because that library scores every document for every
query term in pure Python; postings arrays make a 15,000-phrasing index answer in well under a
millisecond per query.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# A run of CJK characters (no spaces between words) or a word of letters/digits in any other script.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(rf"([{_CJK}]+)|((?:(?![{_CJK}])[^\W_])+(?:'[a-z]+)?)")
# Function words carry no topical signal in FAQ questions and only blur BM25's idf weighting.
_STOP_TEXT = (
    "a an the and or but if of to in on at by for with from as is are was were be been being am do does did "
    "i me my we our you your it its this that these those there here what which who whom how can could would "
    "should will shall may might must have has had not no so than too very just about into over out up down "
    "any some all get"
)
STOPWORDS = frozenset(_STOP_TEXT.split())


def cjk_terms(run: str) -> list[str]:
    """Chinese and Japanese are written without spaces: index each character and each pair of neighbours
    (Lucene's CJK approach; bigrams match most two-character words, characters keep one-character queries
    and words the bigrams split), rather than a dictionary segmenter whose errors are silent misses."""
    return list(run) + [run[i : i + 2] for i in range(len(run) - 1)]


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens without stopwords, with a crude plural strip ('accounts' -> 'account');
    runs of CJK characters become characters and character pairs (`cjk_terms`)."""
    tokens: list[str] = []
    for cjk, token in _TOKEN.findall(text.lower()):
        if cjk:
            tokens.extend(cjk_terms(cjk))
            continue
        if token in STOPWORDS:
            continue
        if len(token) > 3 and token.endswith("s") and not token.endswith("ss"):
            token = token[:-1]
        tokens.append(token)
    return tokens


@dataclass
class BM25:
    """BM25 scores of every document for a query: `scores(query) -> (n_docs,)`."""

    postings: dict[str, tuple[np.ndarray, np.ndarray]]  # term -> (doc ids, precomputed term weights)
    n_docs: int

    @classmethod
    def build(cls, documents: Sequence[str], k1: float = 1.2, b: float = 0.75) -> BM25:
        docs = [Counter(tokenize(text)) for text in documents]
        lengths = np.array([sum(d.values()) for d in docs], dtype=np.float64)
        avg = float(lengths.mean()) if len(docs) and lengths.mean() > 0 else 1.0
        by_term: dict[str, list[tuple[int, int]]] = {}
        for i, counts in enumerate(docs):
            for term, tf in counts.items():
                by_term.setdefault(term, []).append((i, tf))
        n = len(docs)
        postings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for term, rows in by_term.items():
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            freq = np.array([r[1] for r in rows], dtype=np.float64)
            idf = math.log(1.0 + (n - len(rows) + 0.5) / (len(rows) + 0.5))  # the non-negative Lucene form
            norm = k1 * (1.0 - b + b * lengths[ids] / avg)
            postings[term] = (ids, idf * freq * (k1 + 1.0) / (freq + norm))
        return cls(postings=postings, n_docs=n)

    def scores(self, query: str) -> np.ndarray:
        out = np.zeros(self.n_docs, dtype=np.float64)
        for term in set(tokenize(query)):
            hit = self.postings.get(term)
            if hit is not None:
                out[hit[0]] += hit[1]
        return out
