"""A persistent vector index: ids + unit vectors + metadata, exact or HNSW search, add/delete, atomic saves.

Below `exact_threshold` live vectors the search is an exact matrix product in numpy (no build
cost, perfect recall); above it an hnswlib HNSW graph answers in well under a millisecond. The
choice of hnswlib over FAISS comes from bench/embeddings.py (see BENCHMARKS.md): same query
speed for HNSW, and hnswlib deletes items in place where FAISS's HNSW cannot.

On disk INDEX/ holds
  index.json     format version, dim, model used to embed, backend, counts
  vectors.npy    float32 (n, dim), row i <-> records line i (deleted rows kept as tombstones)
  records.jsonl  {"id", "metadata", "deleted"} per row
  hnsw.bin       the graph, when the HNSW backend is in use
and a save replaces the whole folder in one rename (a crash leaves the previous index intact).

Grouped indexes (an FAQ: several questions, and the answer text, per answer id): `group_key` names
the metadata field holding each row's group (answer id). Rows keep unique ids of their own, and a
search returns one hit per group, scored by its best row (max over the group's questions and
answer), with the group as the hit's id and the matched row's id in its metadata as `matched_id`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from fmkit.errors import DataError, ModelError
from fmkit.utils.folders import read_json_object, refuse_foreign_folder
from fmkit.utils.io import atomic_directory

FORMAT_VERSION = 1
INDEX_KIND = "fmkit-vector-index"
DEFAULT_EXACT_THRESHOLD = 50_000
Backend = Literal["auto", "exact", "hnsw"]


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "score": round(self.score, 6), "metadata": self.metadata}


class VectorIndex:
    """Cosine-similarity search over unit vectors. Not safe for concurrent writers; readers may share it."""

    def __init__(self, dim: int, model: str | None = None, backend: Backend = "auto",
                 exact_threshold: int = DEFAULT_EXACT_THRESHOLD, hnsw_m: int = 16, hnsw_ef_construction: int = 100,
                 group_key: str | None = None) -> None:
        self.dim = dim
        self.group_key = group_key
        self.model = model
        self.backend: Backend = backend
        self.exact_threshold = exact_threshold
        self.hnsw_m = hnsw_m
        self.hnsw_ef_construction = hnsw_ef_construction
        self._vectors = np.zeros((0, dim), dtype=np.float32)
        self._ids: list[str] = []
        self._metadata: list[dict[str, Any]] = []
        self._alive = np.zeros(0, dtype=bool)
        self._row_of: dict[str, int] = {}
        self._hnsw: Any = None  # hnswlib.Index when the graph backend is active

    # -- size and backend ------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._row_of)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._row_of

    @property
    def active_backend(self) -> str:
        return "hnsw" if self._hnsw is not None else "exact"

    def _wants_hnsw(self) -> bool:
        return self.backend == "hnsw" or (self.backend == "auto" and len(self) >= self.exact_threshold)

    # -- writes -----------------------------------------------------------------------------------
    def add(self, ids: Sequence[str], vectors: np.ndarray, metadata: Sequence[dict[str, Any]] | None = None) -> None:
        """Add items; an id already present is replaced (its old vector is deleted first)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise DataError(f"vectors of shape {vectors.shape} do not fit this index of dimension {self.dim}.")
        if len(ids) != len(vectors) or (metadata is not None and len(metadata) != len(ids)):
            raise DataError(f"{len(ids)} ids, {len(vectors)} vectors and "
                            f"{len(metadata) if metadata is not None else len(ids)} metadata rows: they must match.")
        str_ids = [str(i) for i in ids]
        seen: set[str] = set()
        dups = [i for i in str_ids if i in seen or seen.add(i)]  # type: ignore[func-returns-value]
        if dups:
            raise DataError(f"duplicate ids in one add: {', '.join(dups[:5])}; ids must be unique.")
        if not np.isfinite(vectors).all():
            raise DataError("vectors contain NaN or infinity.")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = vectors / np.maximum(norms, 1e-12)  # cosine similarity == inner product of unit vectors
        self.delete([i for i in str_ids if i in self._row_of])
        start = len(self._ids)
        self._vectors = np.concatenate([self._vectors, vectors]) if start else vectors.copy()
        self._ids.extend(str_ids)
        self._metadata.extend(dict(m) for m in (metadata or [{} for _ in str_ids]))
        self._alive = np.concatenate([self._alive, np.ones(len(str_ids), dtype=bool)])
        for offset, item_id in enumerate(str_ids):
            self._row_of[item_id] = start + offset
        if self._hnsw is not None:
            self._hnsw_add(np.arange(start, start + len(str_ids)))
        elif self._wants_hnsw():
            self._build_hnsw()

    def delete(self, ids: Sequence[str]) -> int:
        """Remove items by id; unknown ids are ignored. Returns how many were removed."""
        removed = 0
        for item_id in self._with_group_rows(ids):
            row = self._row_of.pop(str(item_id), None)
            if row is None:
                continue
            self._alive[row] = False
            if self._hnsw is not None:
                self._hnsw.mark_deleted(row)
            removed += 1
        return removed

    def _with_group_rows(self, ids: Sequence[str]) -> list[str]:
        """In a grouped index an answer id given to delete stands for all of its rows."""
        ids = [str(i) for i in ids]
        if self.group_key is None:
            return ids
        groups = set(ids) - set(self._row_of)
        if not groups:
            return ids
        return ids + [item for item, row in self._row_of.items() if str(self._metadata[row].get(self.group_key)) in groups]

    def compact(self) -> None:
        """Drop deleted rows for good (and rebuild the graph if one is in use)."""
        keep = np.flatnonzero(self._alive)
        self._vectors = self._vectors[keep]
        self._ids = [self._ids[i] for i in keep]
        self._metadata = [self._metadata[i] for i in keep]
        self._alive = np.ones(len(keep), dtype=bool)
        self._row_of = {item_id: row for row, item_id in enumerate(self._ids)}
        self._hnsw = None
        if self._wants_hnsw():
            self._build_hnsw()

    # -- reads ------------------------------------------------------------------------------------
    def get(self, item_id: str) -> tuple[np.ndarray, dict[str, Any]]:
        row = self._row_of.get(str(item_id))
        if row is None:
            raise KeyError(item_id)
        return self._vectors[row], self._metadata[row]

    def search(self, query: np.ndarray, k: int = 10) -> list[Hit]:
        return self.search_many(np.asarray(query, dtype=np.float32)[None, :], k)[0]

    def search_many(self, queries: np.ndarray, k: int = 10, ef: int | None = None) -> list[list[Hit]]:
        """Top-k hits per query row, best first. Queries are normalised, so any scale is fine."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise DataError(f"query of shape {queries.shape} does not fit this index of dimension {self.dim}.")
        queries = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
        k = min(k, len(self))
        if k <= 0:
            return [[] for _ in range(len(queries))]
        if self.group_key is not None:
            return self._grouped_search(queries, k, ef)
        if self._hnsw is not None:
            self._hnsw.set_ef(max(ef or 64, k))
            try:
                rows, dists = self._hnsw.knn_query(queries, k=k)
                scores = 1.0 - dists  # hnswlib's 'ip' space returns 1 - <q, x>
                return self._hits(rows, scores)
            except RuntimeError:
                pass  # the graph found fewer than k live items (many deletions): answer exactly instead
        rows, scores = self._exact(queries, k)
        return self._hits(rows, scores)

    def _exact(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        sims = queries @ self._vectors.T
        sims[:, ~self._alive] = -np.inf
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        part_scores = np.take_along_axis(sims, part, axis=1)
        order = np.argsort(-part_scores, axis=1, kind="stable")
        return np.take_along_axis(part, order, axis=1), np.take_along_axis(part_scores, order, axis=1)

    def _group_of(self, row: int) -> str:
        assert self.group_key is not None
        return str(self._metadata[row].get(self.group_key, self._ids[row]))

    def _grouped_search(self, queries: np.ndarray, k: int, ef: int | None) -> list[list[Hit]]:
        """One hit per group. Exact: every live row scored, the best row per group kept. HNSW: neighbours
        fetched in growing rounds until k groups are found (the whole index at worst)."""
        out: list[list[Hit]] = []
        for query in queries:
            fetch = min(len(self), 10 * k)
            while True:
                rows, scores = (self._exact(query[None, :], fetch) if self._hnsw is None
                                else self._hnsw_or_exact(query[None, :], fetch, ef))
                best: dict[str, tuple[int, float]] = {}
                for r, sc in zip(rows[0], scores[0], strict=True):
                    group = self._group_of(int(r))
                    if group not in best:  # rows come best first: the first row of a group is its best
                        best[group] = (int(r), float(sc))
                if len(best) >= k or fetch >= len(self):
                    break
                fetch = min(len(self), fetch * 4)
            top = sorted(best.items(), key=lambda item: -item[1][1])[:k]
            out.append([Hit(group, score, {**self._metadata[r], "matched_id": self._ids[r]})
                        for group, (r, score) in top])
        return out

    def _hnsw_or_exact(self, queries: np.ndarray, k: int, ef: int | None) -> tuple[np.ndarray, np.ndarray]:
        self._hnsw.set_ef(max(ef or 64, k))
        try:
            rows, dists = self._hnsw.knn_query(queries, k=k)
            return rows, 1.0 - dists
        except RuntimeError:
            return self._exact(queries, k)

    def _hits(self, rows: np.ndarray, scores: np.ndarray) -> list[list[Hit]]:
        return [[Hit(self._ids[r], float(s), self._metadata[r]) for r, s in zip(rr, ss, strict=True)]
                for rr, ss in zip(rows, scores, strict=True)]

    # -- the HNSW graph ---------------------------------------------------------------------------
    def _new_hnsw(self, capacity: int, init: bool = True) -> Any:
        try:
            import hnswlib
        except ModuleNotFoundError:
            raise ModelError("This index needs hnswlib for its size: `pip install hnswlib`, or build it with "
                             "--backend exact.") from None
        graph = hnswlib.Index(space="ip", dim=self.dim)
        if not init:
            return graph  # load_index() fills it
        graph.init_index(max_elements=max(capacity, 16), M=self.hnsw_m, ef_construction=self.hnsw_ef_construction,
                         random_seed=0)
        return graph

    def _build_hnsw(self) -> None:
        self._hnsw = self._new_hnsw(len(self._ids) * 2)
        self._hnsw_add(np.arange(len(self._ids)))

    def _hnsw_add(self, rows: np.ndarray) -> None:
        needed = int(rows.max()) + 1 if len(rows) else 0
        if needed > self._hnsw.get_max_elements():
            self._hnsw.resize_index(max(needed, 2 * self._hnsw.get_max_elements()))
        self._hnsw.add_items(self._vectors[rows], rows)
        for row in rows[~self._alive[rows]]:
            self._hnsw.mark_deleted(int(row))

    # -- persistence ------------------------------------------------------------------------------
    def save(self, directory: Path | str) -> None:
        directory = Path(directory)
        # The save swaps the whole folder: never over one that is not an index (a user's folder of documents).
        refuse_foreign_folder(directory, read_json_object(directory / "index.json").get("kind") == INDEX_KIND,
                              "index.json of an fmkit index")
        with atomic_directory(directory) as tmp:
            np.save(tmp / "vectors.npy", self._vectors)
            with open(tmp / "records.jsonl", "w", encoding="utf-8") as fh:
                for item_id, meta, alive in zip(self._ids, self._metadata, self._alive, strict=True):
                    fh.write(json.dumps({"id": item_id, "metadata": meta, "deleted": not alive},
                                        ensure_ascii=False, default=str) + "\n")
            if self._hnsw is not None:
                self._hnsw.save_index(str(tmp / "hnsw.bin"))
            info = {"format": FORMAT_VERSION, "kind": INDEX_KIND, "dim": self.dim, "model": self.model,
                    "metric": "cosine", "backend": self.backend, "active_backend": self.active_backend,
                    "exact_threshold": self.exact_threshold, "hnsw_m": self.hnsw_m,
                    "hnsw_ef_construction": self.hnsw_ef_construction, "group_key": self.group_key, "count": len(self),
                    "rows": len(self._ids)}
            (tmp / "index.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, directory: Path | str) -> VectorIndex:
        directory = Path(directory)
        info_path = directory / "index.json"
        if not info_path.is_file():
            raise ModelError(f"{directory}: no index.json, so this is not an index built by `fmkit index build`.")
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ModelError(f"{info_path}: corrupt ({exc}); rebuild the index.") from None
        if info.get("format") != FORMAT_VERSION:
            raise ModelError(f"{directory}: index format {info.get('format')} is not supported by this fmkit; rebuild it.")
        index = cls(int(info["dim"]), info.get("model"), info.get("backend", "auto"),
                    int(info.get("exact_threshold", DEFAULT_EXACT_THRESHOLD)), int(info.get("hnsw_m", 16)),
                    int(info.get("hnsw_ef_construction", 100)), info.get("group_key"))
        index._vectors = np.load(directory / "vectors.npy", allow_pickle=False)
        with open(directory / "records.jsonl", encoding="utf-8") as fh:
            records = [json.loads(line) for line in fh if line.strip()]
        if len(records) != len(index._vectors):
            raise ModelError(f"{directory}: {len(records)} records for {len(index._vectors)} vectors; rebuild the index.")
        index._ids = [str(r["id"]) for r in records]
        index._metadata = [r.get("metadata") or {} for r in records]
        index._alive = np.array([not r.get("deleted", False) for r in records], dtype=bool)
        index._row_of = {item_id: row for row, item_id in enumerate(index._ids) if index._alive[row]}
        graph_path = directory / "hnsw.bin"
        if info.get("active_backend") == "hnsw" and graph_path.is_file():
            index._hnsw = index._new_hnsw(len(index._ids), init=False)
            index._hnsw.load_index(str(graph_path), max_elements=max(len(index._ids), 16))
        elif index._wants_hnsw():
            index._build_hnsw()
        return index
