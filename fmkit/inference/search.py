"""Semantic search = an Embedder + a VectorIndex that remembers which model embedded it.

    search = SemanticSearch.build("all-MiniLM-L6-v2", ids, texts, metadata)
    search.save("faq.index")
    SemanticSearch.load("faq.index").search("how do I reset my password", k=5)   # -> list[Hit]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fmkit.errors import ModelError
from fmkit.inference.embedder import Embedder, model_folder
from fmkit.inference.index import DEFAULT_EXACT_THRESHOLD, Backend, Hit, VectorIndex
from fmkit.utils.progress import Progress


class SemanticSearch:
    def __init__(self, index: VectorIndex, embedder: Embedder) -> None:
        if index.dim != embedder.dim:
            raise ModelError(f"the index holds {index.dim}-d vectors but the model {embedder.name} makes "
                             f"{embedder.dim}-d ones; search with the model that built the index.")
        self.index = index
        self.embedder = embedder

    @classmethod
    def build(cls, model: str | Path | Embedder, ids: Sequence[str], texts: Iterable[str],
              metadata: Sequence[dict[str, Any]] | None = None, backend: Backend = "auto",
              exact_threshold: int = DEFAULT_EXACT_THRESHOLD, chunk: int = 4096) -> SemanticSearch:
        embedder = model if isinstance(model, Embedder) else Embedder.load(model)
        index = VectorIndex(embedder.dim, model=model_reference(embedder), backend=backend,
                            exact_threshold=exact_threshold)
        search = cls(index, embedder)
        search.add_texts(ids, texts, metadata, chunk=chunk)
        return search

    @classmethod
    def load(cls, directory: Path | str, model: str | Path | None = None, batch_size: int = 64) -> SemanticSearch:
        index = VectorIndex.load(directory)
        name = model or index.model
        if name is None:
            raise ModelError(f"{directory}: the index does not say which model built it; pass the model explicitly.")
        return cls(index, Embedder.load(name, batch_size=batch_size))

    def add_texts(self, ids: Sequence[str], texts: Iterable[str], metadata: Sequence[dict[str, Any]] | None = None,
                  chunk: int = 4096, progress: Progress | None = None) -> None:
        """Embed and add in chunks (memory stays flat); re-adding an id replaces it. `progress` counts texts."""
        done = 0
        for block in self.embedder.embed_stream(texts, chunk=chunk, progress=progress):
            end = done + len(block)
            self.index.add(ids[done:end], block, None if metadata is None else metadata[done:end])
            done = end
        if done != len(ids):
            raise ModelError(f"{len(ids)} ids but {done} texts; give one id per text.")

    def search(self, query: str, k: int = 10) -> list[Hit]:
        return self.index.search(self.embedder.embed_one(query), k)

    def search_many(self, queries: Sequence[str], k: int = 10) -> list[list[Hit]]:
        if not queries:
            return []
        return self.index.search_many(self.embedder.embed(queries), k)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self.embedder.embed(texts)

    def save(self, directory: Path | str) -> None:
        self.index.save(directory)


def model_reference(embedder: Embedder) -> str:
    """What the index records as its model: the alias as given, or an absolute folder path."""
    name = embedder.name
    if embedder.path is not None and Path(name).expanduser().exists():
        return str(model_folder(name).resolve())
    return name
