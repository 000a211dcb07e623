"""What every perception tool shares: the tool protocol, model loading, device/dtype, OOM retries.

* :class:`PerceptionTool` is the protocol the pipeline (:mod:`vidagent.tools.perceive`) drives; it
  lives, with :class:`ToolParams` and :class:`ToolOutput`, in :mod:`vidagent.tools.tool` and is
  re-exported here.
* :class:`ModelParams`: the parameters every model-backed tool has.
* :func:`load_model` loads a Hugging Face checkpoint (hub id or local folder) once per process and
  shares it between tools: the action recognizer and the embedder usually use the same SigLIP.
  Every way a load can fail offline becomes one :class:`ModelLoadError` line that names the model
  and says how to point at a local copy.
* :func:`resolve_device` / :func:`resolve_dtype`: CUDA with bf16 (fp16 on GPUs without bf16) when
  there is a GPU, CPU with fp32 otherwise.
* :class:`AdaptiveBatch` runs a function over items in batches and halves the batch on a CUDA
  out-of-memory error instead of losing the video; the smaller size is kept for later batches.

torch and transformers are imported inside functions: importing this module costs nothing.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field

from vidagent.core.errors import ConfigError, MissingDependencyError, VidagentError
from vidagent.tools.tool import PerceptionTool, ToolOutput, ToolParams

log = logging.getLogger(__name__)

DtypeName = Literal["auto", "float32", "bfloat16", "float16"]
ModelKind = Literal["image-text-to-text", "dual-encoder"]
T = TypeVar("T")
R = TypeVar("R")

__all__ = [
    "AdaptiveBatch",
    "DtypeName",
    "LoadedModel",
    "ModelKind",
    "ModelLoadError",
    "ModelParams",
    "ModelRunError",
    "PerceptionTool",
    "SplitProcessor",
    "ToolOutput",
    "ToolParams",
    "clear_model_cache",
    "is_oom",
    "load_model",
    "load_pretrained",
    "looks_like_path",
    "model_fingerprint",
    "require_torch",
    "require_transformers",
    "resolve_device",
    "resolve_dtype",
]


class ModelLoadError(VidagentError):
    """A model or its processor cannot be loaded (missing offline, not a model folder, bad id)."""


class ModelRunError(VidagentError):
    """A model failed on its inputs (also: out of memory even at batch size 1)."""


# --- model parameters -------------------------------------------------------------------------


class ModelParams(ToolParams):
    """Parameters every model-backed tool has."""

    model: str = Field(min_length=1, description="Hub id or local folder")
    revision: str | None = Field(default=None, description="Hub revision (branch, tag, commit)")
    batch_size: int = Field(default=16, ge=1, description="Images per forward pass (halves on OOM)")
    device: str = Field(default="auto", description="auto, cpu, cuda, cuda:N, mps")
    dtype: DtypeName = "auto"
    frames_per_segment: int = Field(default=4, ge=1, le=64, description="Frames per segment")


# --- optional dependencies, device and dtype ---------------------------------------------------


def require_torch(feature: str) -> Any:
    try:
        import torch
    except ImportError as exc:
        raise MissingDependencyError("torch", feature, "perception") from exc
    return torch


def require_transformers(feature: str) -> Any:
    require_torch(feature)
    try:
        import transformers
    except ImportError as exc:
        raise MissingDependencyError("transformers", feature, "perception") from exc
    return transformers


def resolve_device(device: str = "auto") -> str:
    """``auto``: ``cuda`` if a GPU is visible, else ``cpu``. An unusable choice: ConfigError."""
    torch = require_torch("running vision models")
    dev = device.strip().lower()
    if dev == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if dev.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r}: torch sees no CUDA GPU (use --device cpu)")
        index = dev.partition(":")[2]
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise ConfigError(f"device {device!r}: only {torch.cuda.device_count()} GPU(s) visible")
        return dev
    if dev == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError("device 'mps': Metal is not available to torch")
        return dev
    if dev == "cpu":
        return dev
    raise ConfigError(f"unknown device {device!r} (auto, cpu, cuda, cuda:N or mps)")


def resolve_dtype(dtype: DtypeName, device: str) -> str:
    """``auto`` -> bf16 on GPUs that support it, fp16 on older GPUs, fp32 on CPU and MPS."""
    if dtype != "auto":
        if dtype != "float32" and device == "cpu":
            log.warning("dtype %s on CPU is slow and loses precision; float32 is advised", dtype)
        return dtype
    if device.startswith("cuda"):
        torch = require_torch("running vision models")
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "float32"


# --- loading -----------------------------------------------------------------------------------


def looks_like_path(model: str) -> bool:
    """True for an existing folder or anything written like a path rather than a hub id.

    Hub ids are ``name`` or ``org/name``; ``./m``, ``/m``, ``~/m`` and ``a/b/c`` are paths.
    """
    return (
        Path(model).expanduser().exists()
        or model.startswith((".", "/", "~"))
        or model.count("/") > 1
        or "\\" in model
    )


def model_fingerprint(model: str, revision: str | None = None, *, hasher: Any = None) -> str:
    """What identifies the weights for cache keys, computed without loading them.

    A hub id is its own fingerprint (plus the revision). A local folder is fingerprinted by the
    content of its files (``hasher(path) -> hex``, e.g. the store's memoized ``video_hash``), so
    retraining a checkpoint in place does not reuse stale results.
    """
    folder = Path(model).expanduser()
    if not folder.is_dir():
        return f"{model}@{revision}" if revision else model
    h = hashlib.blake2b(digest_size=16)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel.startswith(".") or "/." in rel:
            continue
        if hasher is not None:
            digest = hasher(path)
        else:
            from vidagent.store.perception import file_digest

            digest = file_digest(path)
        h.update(f"{rel}\0{digest}\n".encode())
    return f"local:{h.hexdigest()}"


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__


def _load_error(model: str, exc: BaseException) -> ModelLoadError:
    from huggingface_hub.errors import GatedRepoError, HFValidationError, RepositoryNotFoundError

    chain = [exc, exc.__cause__, exc.__context__]
    if looks_like_path(model):
        if not Path(model).expanduser().exists():
            return ModelLoadError(f"cannot load model '{model}': no such folder")
        return ModelLoadError(
            f"cannot load model '{model}': the folder is not a usable checkpoint for this tool "
            f"({_first_line(exc)})"
        )
    if isinstance(exc, (ValueError, KeyError)) and not isinstance(exc, HFValidationError):
        return ModelLoadError(f"cannot load model '{model}': {_first_line(exc)}")
    if any(isinstance(e, GatedRepoError) for e in chain):
        return ModelLoadError(
            f"cannot load model '{model}': it is gated; accept its licence on the hub and log in "
            "(huggingface-cli login), or pass a local folder"
        )
    if any(isinstance(e, RepositoryNotFoundError) for e in chain):
        return ModelLoadError(f"cannot load model '{model}': no such model on the hub")
    return ModelLoadError(
        f"cannot load model '{model}': not found locally and the hub is unreachable; "
        f"download it on a connected machine (huggingface-cli download {model}) and pass its "
        "folder path, or set HF_HOME"
    )


def load_pretrained(loader: Callable[..., T], model: str, **kwargs: Any) -> T:
    """``loader(model, **kwargs)`` (a ``from_pretrained``); hub/file errors -> ModelLoadError.

    A hub id loads with ``local_files_only=True`` when the hub is not reachable
    (:func:`vidagent.tools.hub.hub_reachable`: offline env, or no answer in seconds), so a model
    missing from the local cache fails at once in one line instead of after download retries.
    """
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    from vidagent.tools.hub import hub_reachable

    local = Path(model).expanduser().is_dir()
    source = str(Path(model).expanduser()) if local else model
    if not local and not looks_like_path(model) and not hub_reachable():
        kwargs = {**kwargs, "local_files_only": True}
    try:
        return loader(source, **kwargs)
    except (OSError, HFValidationError, LocalEntryNotFoundError, ValueError, KeyError) as exc:
        raise _load_error(model, exc) from exc


@dataclass
class LoadedModel:
    """A model in eval mode on its device, with its processor."""

    model: Any
    processor: Any
    model_id: str
    device: str
    dtype: str


_LOADED: dict[tuple[str, str, str | None, str, str], LoadedModel] = {}
_LOAD_LOCK = threading.Lock()


def load_model(
    model: str,
    kind: ModelKind,
    *,
    device: str = "auto",
    dtype: DtypeName = "auto",
    revision: str | None = None,
) -> LoadedModel:
    """Load ``model`` once per process for ``kind`` on ``device``; later calls share it.

    ``image-text-to-text``: ``AutoModelForImageTextToText`` (BLIP, BLIP-2, LLaVA, Qwen-VL,
    VisionEncoderDecoder...). ``dual-encoder``: ``AutoModel`` with ``get_image_features`` and
    ``get_text_features`` (CLIP, SigLIP, SigLIP 2...). The processor comes from ``AutoProcessor``;
    checkpoints that ship only an image processor and a tokenizer (VisionEncoderDecoder) get a
    :class:`SplitProcessor` of the two.
    """
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    cache_key = (kind, model, revision, dev, dt)
    with _LOAD_LOCK:
        if cache_key in _LOADED:
            return _LOADED[cache_key]
        transformers = require_transformers(f"the model '{model}'")
        torch = require_torch(f"the model '{model}'")
        kwargs: dict[str, Any] = {"revision": revision} if revision else {}
        auto = (
            transformers.AutoModelForImageTextToText
            if kind == "image-text-to-text"
            else transformers.AutoModel
        )
        processor = _load_processor(transformers, model, kwargs)
        net, info = load_pretrained(
            auto.from_pretrained,
            model,
            dtype=getattr(torch, dt),
            output_loading_info=True,
            **kwargs,
        )
        if kind == "dual-encoder" and not (
            hasattr(net, "get_image_features") and hasattr(net, "get_text_features")
        ):
            raise ModelLoadError(
                f"cannot use model '{model}' ({type(net).__name__}) for embeddings: it has no "
                "get_image_features/get_text_features (use a CLIP or SigLIP family model)"
            )
        missing = sorted(info.get("missing_keys") or ())
        if missing:  # transformers would fill them with random weights and only warn
            raise ModelLoadError(
                f"cannot use model '{model}' as {type(net).__name__}: {len(missing)} weights are "
                f"missing from the checkpoint (e.g. {missing[0]}); is it a {kind} model?"
            )
        net.to(dev).eval()
        loaded = LoadedModel(net, processor, model, dev, dt)
        _LOADED[cache_key] = loaded
        return loaded


def clear_model_cache() -> None:
    """Forget every loaded model (frees their memory once nothing else holds them)."""
    with _LOAD_LOCK:
        _LOADED.clear()


class SplitProcessor:
    """An image processor and a tokenizer used as one processor (VisionEncoderDecoder)."""

    chat_template = None

    def __init__(self, image_processor: Any, tokenizer: Any) -> None:
        self.image_processor = image_processor
        self.tokenizer = tokenizer

    def __call__(self, images: Any = None, text: Any = None, **kwargs: Any) -> Any:
        out = self.image_processor(images=images, return_tensors=kwargs.get("return_tensors"))
        if text is not None:
            out.update(self.tokenizer(text, **kwargs))
        return out

    def batch_decode(self, *args: Any, **kwargs: Any) -> list[str]:
        return list(self.tokenizer.batch_decode(*args, **kwargs))


def _load_processor(transformers: Any, model: str, kwargs: dict[str, Any]) -> Any:
    processor = load_pretrained(transformers.AutoProcessor.from_pretrained, model, **kwargs)
    if hasattr(processor, "image_processor"):
        return processor
    # A bare tokenizer or image processor came back: load the other half separately.
    auto_image = transformers.AutoImageProcessor
    image_processor = load_pretrained(auto_image.from_pretrained, model, **kwargs)
    tokenizer = load_pretrained(transformers.AutoTokenizer.from_pretrained, model, **kwargs)
    return SplitProcessor(image_processor, tokenizer)


# --- batching with OOM back-off ------------------------------------------------------------------


def is_oom(exc: BaseException) -> bool:
    """A CUDA (or MPS) out-of-memory error, by type or by message."""
    try:
        import torch

        if isinstance(exc, torch.cuda.OutOfMemoryError):
            return True
    except ImportError:  # pragma: no cover
        pass
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _free_cuda_memory() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover
        pass


class AdaptiveBatch:
    """A batch size that halves when a batch runs out of GPU memory, and stays halved.

    ``map(fn, items)`` calls ``fn`` on consecutive slices of ``items`` and concatenates what it
    returns (one result per item). On an out-of-memory error the same slice is retried with half the
    batch; at batch size 1 the error becomes a :class:`ModelRunError`. Other errors propagate.
    """

    def __init__(self, size: int, *, what: str = "model") -> None:
        if size < 1:
            raise ConfigError(f"batch size must be >= 1, got {size}")
        self.size = size
        self.what = what
        self.halvings = 0

    def map(self, fn: Callable[[Sequence[T]], Sequence[R]], items: Sequence[T]) -> list[R]:
        results: list[R] = []
        start = 0
        while start < len(items):
            chunk = items[start : start + self.size]
            try:
                out = fn(chunk)
            except Exception as exc:
                if not is_oom(exc):
                    raise
                del exc  # drop the traceback's references to GPU tensors before freeing
                _free_cuda_memory()
                if self.size == 1:
                    msg = f"{self.what}: out of GPU memory even at batch size 1"
                    raise ModelRunError(msg) from None
                self.size = max(1, self.size // 2)
                self.halvings += 1
                log.warning("%s: out of GPU memory, batch size halved to %d", self.what, self.size)
                continue
            if len(out) != len(chunk):
                raise ModelRunError(f"{self.what}: {len(out)} results for a batch of {len(chunk)}")
            results.extend(out)
            start += len(chunk)
        return results
