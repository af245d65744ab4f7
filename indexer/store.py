"""FAISS vector store: inner product over unit vectors (= cosine), rows mapped to doc ids.

Exact (flat) search by default; from `approx_min_vectors` rows on, an approximate index (HNSW or IVF)
keeps search sub-linear, as the corpus grows to millions of vectors (see bench/bench_dense.py for the
measured recall and latency of each). On a machine where FAISS was built with GPU support and CUDA
is present, search runs on the GPU (`index_cpu_to_gpu`). Files are written atomically and read back
memory-mapped where FAISS allows it, so workers share the pages of one read-only file.

    <dir>/vectors.faiss   the FAISS index (always saved in its CPU form)
    <dir>/ids.json        doc id of each row (a document may own several rows)
"""
from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import faiss
import numpy as np

log = logging.getLogger(__name__)

INDEX_FILE = "vectors.faiss"
IDS_FILE = "ids.json"
APPROX_KINDS = ("hnsw", "ivf")


@dataclass(frozen=True)
class StoreSettings:
    approx_min_vectors: int = 50_000  # config INDEX_APPROX_MIN_VECTORS
    approx_kind: str = "hnsw"  # config INDEX_APPROX_KIND
    hnsw_m: int = 32  # graph degree: recall vs memory
    hnsw_ef_construction: int = 80
    hnsw_ef_search: int = 128
    ivf_lists_per_sqrt_n: float = 4.0  # nlist = 4 * sqrt(n), FAISS's usual rule of thumb
    ivf_nprobe: int = 32
    ivf_train_max: int = 100_000  # k-means trains on at most this many rows
    use_gpu: bool = True  # when FAISS has GPU support and CUDA is present

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "StoreSettings":
        """The app config's INDEX_APPROX_MIN_VECTORS / INDEX_APPROX_KIND (other fields: defaults)."""
        return cls(approx_min_vectors=int(config["INDEX_APPROX_MIN_VECTORS"]),
                   approx_kind=str(config["INDEX_APPROX_KIND"]))


def gpu_available() -> bool:
    """True when this FAISS build can use a GPU and one is visible."""
    return hasattr(faiss, "index_cpu_to_gpu") and hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0


def build_faiss_index(vectors: np.ndarray, settings: StoreSettings) -> faiss.Index:
    """Flat below settings.approx_min_vectors rows, else HNSW or IVF (inner-product metric)."""
    n, dim = vectors.shape
    if n < settings.approx_min_vectors:
        index = faiss.IndexFlatIP(dim)
    elif settings.approx_kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = settings.hnsw_ef_construction
    elif settings.approx_kind == "ivf":
        nlist = max(1, int(settings.ivf_lists_per_sqrt_n * math.sqrt(n)))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        sample = vectors[np.random.default_rng(0).permutation(n)[: settings.ivf_train_max]]
        index.train(sample)
    else:
        raise ValueError(f"approx_kind must be one of {APPROX_KINDS}, not {settings.approx_kind!r}")
    index.add(vectors)
    return index


def _set_search_params(index: faiss.Index, settings: StoreSettings) -> None:
    if isinstance(index, faiss.IndexHNSW):
        index.hnsw.efSearch = settings.hnsw_ef_search
    elif isinstance(index, faiss.IndexIVF):
        index.nprobe = min(settings.ivf_nprobe, index.nlist)


def _atomic_write(path: Path, write) -> None:
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}-", delete=False) as fh:
        tmp = Path(fh.name)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class VectorStore:
    """A FAISS index plus the doc id of each row; `search` returns (doc_id, cosine), best first."""

    def __init__(self, index: faiss.Index, ids: Sequence[str], settings: StoreSettings | None = None):
        if index.ntotal != len(ids):
            raise ValueError(f"index has {index.ntotal} rows but {len(ids)} ids")
        self.settings = settings or StoreSettings()
        self.ids = list(ids)
        # the most rows any one document owns: how many extra rows to fetch so k distinct docs come back
        self.rows_per_doc = max(Counter(self.ids).values(), default=1)
        self.cpu_index = index
        _set_search_params(index, self.settings)
        self.index, self.device = index, "cpu"
        if self.settings.use_gpu and gpu_available():
            self._gpu_resources = faiss.StandardGpuResources()
            self.index, self.device = faiss.index_cpu_to_gpu(self._gpu_resources, 0, index), "gpu"
        log.info("vector store: %s index, %d vectors, searching on %s",
                 self.kind, index.ntotal, self.device.upper())

    @property
    def kind(self) -> str:
        if isinstance(self.cpu_index, faiss.IndexHNSW):
            return "hnsw"
        if isinstance(self.cpu_index, faiss.IndexIVF):
            return "ivf"
        return "flat"

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def build(cls, vectors: np.ndarray, ids: Sequence[str], settings: StoreSettings | None = None) -> "VectorStore":
        """Index unit vectors (n, dim) float32; rows are L2-normalised again to be safe."""
        settings = settings or StoreSettings()
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).copy()
        faiss.normalize_L2(vectors)
        return cls(build_faiss_index(vectors, settings), ids, settings)

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        _atomic_write(directory / INDEX_FILE, lambda p: faiss.write_index(self.cpu_index, str(p)))
        _atomic_write(directory / IDS_FILE, lambda p: p.write_text(json.dumps(self.ids), encoding="utf-8"))

    @classmethod
    def load(cls, directory: Path, settings: StoreSettings | None = None, mmap: bool = True) -> "VectorStore":
        """Read a saved store; memory-mapped (shared between processes) where FAISS supports it."""
        directory = Path(directory)
        path = str(directory / INDEX_FILE)
        index = None
        if mmap:
            try:
                index = faiss.read_index(path, faiss.IO_FLAG_MMAP | faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
            except RuntimeError as exc:
                log.info("FAISS cannot memory-map %s (%s); reading it into memory", path, exc)
        if index is None:
            index = faiss.read_index(path)
        ids = json.loads((directory / IDS_FILE).read_text(encoding="utf-8"))
        return cls(index, ids, settings)

    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        """For each query row, up to k distinct doc ids with their best cosine, best first.

        A document with several rows (extra vectors) counts once, so more rows than k are fetched.
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.cpu_index.d)
        fetch = min(len(self.ids), k * self.rows_per_doc)
        if fetch == 0:
            return [[] for _ in range(len(queries))]
        scores, rows = self.index.search(queries, fetch)
        results = []
        for score_row, id_row in zip(scores, rows):
            best: dict[str, float] = {}
            for score, row in zip(score_row.tolist(), id_row.tolist()):
                if row >= 0 and self.ids[row] not in best:
                    best[self.ids[row]] = score
                if len(best) == k:
                    break
            results.append(list(best.items()))
        return results
