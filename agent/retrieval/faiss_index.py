"""FAISS indexes for the example bank: creation, GPU placement, thread control, file I/O.

All indexes use inner product on L2-normalized vectors, i.e. cosine similarity.

- ``flat`` (default): exact search, no parameters. Right for banks up to ~100k examples: one query
  scans every vector (about 150 MB at 100k x 384), which is memory-bandwidth bound.
- ``hnsw``: graph index (``IndexHNSWFlat``), sub-millisecond queries on large banks, ~0.97 recall
  at efSearch 64 on clustered data. Stores the full vectors, so reconstruct() is exact.
- ``ivf``: inverted lists (``IndexIVFFlat``), needs training, cheaper to build than HNSW on very
  large banks; ``nprobe`` trades recall for speed. A direct map is kept so vectors can be
  reconstructed.

Selection needs the candidate vectors for MMR. They are reconstructed from the index (all three
types store raw float32 vectors), rather than kept in a second float32 matrix next to it: that
would double the bank's memory for no gain (reconstructing 32 rows takes microseconds).

GPU: when faiss was built with GPU support and ``faiss.get_num_gpus() > 0``, flat and IVF indexes
can be cloned to GPU 0 for search (``gpu=None`` means "when available"). The CPU index stays the
canonical copy used for reconstruct() and saving. HNSW has no FAISS GPU implementation and stays
on CPU. This path cannot be exercised on CPU-only machines (faiss-cpu reports 0 GPUs); it is guarded
so that asking for a GPU without one is a clear :class:`~vidagent.core.errors.ConfigError`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from vidagent.core.errors import ConfigError, MissingDependencyError
from vidagent.core.records import Record

IndexType = Literal["flat", "hnsw", "ivf"]
INDEX_TYPES: tuple[str, ...] = ("flat", "hnsw", "ivf")


class IndexParams(Record):
    """How the FAISS index was built and is searched (stored in the bank manifest)."""

    type: IndexType = "flat"
    hnsw_m: int = Field(default=32, ge=4, description="HNSW graph degree")
    hnsw_ef_construction: int = Field(default=80, ge=8)
    hnsw_ef_search: int = Field(default=64, ge=1)
    ivf_nlist: int | None = Field(default=None, ge=1, description="None: about 4·sqrt(count)")
    ivf_nprobe: int = Field(default=32, ge=1)


def import_faiss() -> Any:
    """``import faiss`` with an install hint."""
    try:
        import faiss
    except ImportError as exc:
        raise MissingDependencyError("faiss-cpu", "the example bank") from exc
    return faiss


def num_gpus() -> int:
    """GPUs visible to faiss (always 0 with faiss-cpu)."""
    faiss = import_faiss()
    getter = getattr(faiss, "get_num_gpus", None)
    return int(getter()) if getter is not None else 0


def _ivf_nlist(params: IndexParams, count: int) -> int:
    if params.ivf_nlist is not None:
        nlist = params.ivf_nlist
    else:
        nlist = max(1, round(4 * math.sqrt(count)))
    # FAISS wants ~39 training points per list; fewer lists than that on small banks.
    return max(1, min(nlist, count // 39 or 1))


def create_index(vectors: np.ndarray, params: IndexParams) -> Any:
    """A CPU index of ``params.type`` holding ``vectors`` (float32, normalized, C-contiguous)."""
    faiss = import_faiss()
    count, dim = vectors.shape
    index: Any
    if params.type == "flat":
        index = faiss.IndexFlatIP(dim)
    elif params.type == "hnsw":
        index = faiss.IndexHNSWFlat(dim, params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = params.hnsw_ef_construction
    elif params.type == "ivf":
        if count == 0:
            raise ConfigError("an ivf index needs at least one example to train on")
        nlist = _ivf_nlist(params, count)
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)  # faiss's Python layer keeps `quantizer` alive with `index`
    else:
        raise ConfigError(f"unknown index type {params.type!r}: choose one of {INDEX_TYPES}")
    if count:
        index.add(vectors)
    if params.type == "ivf":
        index.make_direct_map()
    tune_index(index, params)
    return index


def tune_index(index: Any, params: IndexParams) -> None:
    """Apply the search-time parameters (efSearch, nprobe) of ``params`` to ``index``."""
    faiss = import_faiss()
    if params.type == "hnsw":
        faiss.downcast_index(index).hnsw.efSearch = params.hnsw_ef_search
    elif params.type == "ivf":
        ivf = faiss.extract_index_ivf(index)
        ivf.nprobe = params.ivf_nprobe
        if ivf.direct_map.type == faiss.DirectMap.NoMap:
            ivf.make_direct_map()


def to_search_device(index: Any, params: IndexParams, gpu: bool | None) -> tuple[Any, Any]:
    """``(search_index, gpu_resources)``: a GPU clone of ``index`` or ``index`` itself.

    ``gpu=None`` uses a GPU when faiss sees one and the index type supports it; ``gpu=True``
    without one is an error; ``gpu=False`` always stays on CPU.
    """
    if gpu is False:
        return index, None
    available = num_gpus()
    if gpu and not available:
        raise ConfigError(
            "a GPU index was requested but faiss sees no GPU (faiss-cpu is installed, or no CUDA "
            "device is visible); install faiss-gpu-cu12 on a GPU machine or use gpu=False"
        )
    if not available:
        return index, None
    if params.type == "hnsw":
        if gpu:
            raise ConfigError("FAISS has no GPU HNSW index: use index type flat or ivf on GPU")
        return index, None
    faiss = import_faiss()  # pragma: no cover - needs faiss-gpu and a CUDA device
    resources = faiss.StandardGpuResources()  # pragma: no cover
    return faiss.index_cpu_to_gpu(resources, 0, index), resources  # pragma: no cover


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run FAISS with one OpenMP thread inside the block.

    For one query OpenMP start-up costs more than it saves (about 11 ms vs 40-60 ms for a flat
    100k x 384 search on 2 cores); batch searches keep the global setting. The OpenMP setting
    is process-wide: searches from several Python threads at once all run single-threaded.
    """
    faiss = import_faiss()
    previous = faiss.omp_get_max_threads()
    if previous == 1:
        yield
        return
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def write_index(index: Any, path: Path) -> None:
    import_faiss().write_index(index, str(path))


def read_index(path: Path) -> Any:
    return import_faiss().read_index(str(path))


def index_kind(index: Any) -> str:
    """The :data:`IndexType` a loaded FAISS index corresponds to, or its class name if none."""
    faiss = import_faiss()
    concrete = faiss.downcast_index(index)
    for kind, cls in (
        ("flat", faiss.IndexFlatIP),
        ("hnsw", faiss.IndexHNSWFlat),
        ("ivf", faiss.IndexIVFFlat),
    ):
        if isinstance(concrete, cls):
            return kind
    return type(concrete).__name__


def is_inner_product(index: Any) -> bool:
    faiss = import_faiss()
    return int(index.metric_type) == int(faiss.METRIC_INNER_PRODUCT)
