"""Locally fine-tuned models: where they live and what their manifest says.

A model trained by ``llmopt finetune train --name NAME`` is the folder
``.llmopt/models/NAME/`` holding ``adapter.gguf`` (a llama.cpp LoRA adapter) and
``manifest.json`` (base model identity, training data hash, hyperparameters,
library versions, losses, the command that rebuilds it). A spec names it as
``model: {provider: local, id: ft:NAME}``; the folder is looked up from the spec's
folder upwards, the nearest ``.llmopt/models/NAME/`` winning, so a project's specs
find the models trained at its root. Training writes into the nearest existing
``.llmopt`` folder above the spec, or else next to the nearest project marker
(``pyproject.toml``, ``setup.cfg``, ``pytest.ini``, ``tox.ini``, ``.git``).

Nothing here imports llama_cpp or torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..errors import ProviderUnavailable

__all__ = [
    "ADAPTER_FILE",
    "FT_PREFIX",
    "MANIFEST_FILE",
    "MODELS_DIR",
    "FineTunedModel",
    "finetuned_name",
    "find_finetuned",
    "models_home",
]

FT_PREFIX = "ft:"
MODELS_DIR = Path(".llmopt") / "models"
ADAPTER_FILE = "adapter.gguf"
MANIFEST_FILE = "manifest.json"
_PROJECT_MARKERS = ("pyproject.toml", "setup.cfg", "pytest.ini", "tox.ini", ".git")


@dataclass(frozen=True)
class FineTunedModel:
    """A fine-tuned model's folder and its manifest."""

    name: str
    folder: Path
    manifest: Mapping[str, Any]

    @property
    def adapter_path(self) -> Path:
        return self.folder / ADAPTER_FILE

    @property
    def rebuild(self) -> str:
        """The command that trains this model again."""
        return str(self.manifest.get("rebuild") or _generic_rebuild(self.name))

    def base_id(self) -> str | None:
        """The base model as the local provider's ``id`` (None: the embedded model)."""
        base = self.manifest.get("base") or {}
        relative = base.get("path")
        return None if relative is None else str((self.folder / relative).resolve())

    def base_sha256(self) -> str | None:
        return (self.manifest.get("base") or {}).get("sha256")


def finetuned_name(model_id: str | None) -> str | None:
    """NAME for an id ``ft:NAME``; None for any other id."""
    if model_id is None or not model_id.startswith(FT_PREFIX):
        return None
    return model_id[len(FT_PREFIX):].strip()


def _generic_rebuild(name: str) -> str:
    return f"llmopt finetune train SPEC --variant VARIANT --name {name}"


def find_finetuned(name: str, start: Path) -> FineTunedModel:
    """The model ``name`` in the nearest ``.llmopt/models/NAME/`` at or above ``start``."""
    start = start.resolve()
    for folder in (start, *start.parents):
        candidate = folder / MODELS_DIR / name
        if candidate.is_dir():
            return FineTunedModel(name, candidate, _read_manifest(candidate))
    raise ProviderUnavailable(
        f"fine-tuned model {FT_PREFIX}{name} not found: no {MODELS_DIR.as_posix()}/{name}/ in {start} "
        f"or a folder above it; train it with: {_generic_rebuild(name)}"
    )


def _read_manifest(folder: Path) -> Mapping[str, Any]:
    path = folder / MANIFEST_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProviderUnavailable(
            f"{path} is missing: the folder holds no complete fine-tuned model; "
            f"train it again with: {_generic_rebuild(folder.name)}"
        ) from None
    except (OSError, ValueError) as exc:
        raise ProviderUnavailable(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ProviderUnavailable(f"{path}: not a manifest (expected a JSON object)")
    return data


def models_home(spec_dir: Path) -> Path:
    """The ``.llmopt/models`` folder training writes into, for a spec in ``spec_dir``.

    The nearest folder at or above ``spec_dir`` that holds ``.llmopt/`` or marks a
    project (``pyproject.toml``, ``pytest.ini``, ...), so a project nested in another
    (an example inside a repository) keeps its models to itself.
    """
    start = spec_dir.resolve()
    for folder in (start, *start.parents):
        if (folder / ".llmopt").is_dir() or any((folder / marker).exists() for marker in _PROJECT_MARKERS):
            return folder / MODELS_DIR
    return start / MODELS_DIR
