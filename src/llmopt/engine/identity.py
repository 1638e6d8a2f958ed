"""The identity of a variant's result: what determines it, hashed.

Dataset content, recipe, retrieval source content and settings, model id and
parameters, and metric arguments. Two results of one identity are comparable; a
stored baseline of another identity is named field by field (``model: a -> b``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

if TYPE_CHECKING:
    from ..dataset import Case
    from ..spec import RecipeSpec, RetrievalSpec, TaskSpec, VariantSpec

#: Files of a retrieval source hashed at most (a larger source hashes names and sizes).
MAX_HASHED_BYTES = 64 * 1024 * 1024


def digest(value: Any, length: int | None = None) -> str:
    """``sha256:<hex>`` of a canonical JSON rendering of ``value``."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    hexed = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()  # a lone surrogate in a row hashes too
    return f"sha256:{hexed[:length] if length else hexed}"


def variant_identity(
    variant: "VariantSpec",
    base_dir: Path,
    cases: Sequence["Case"],
    metrics: Mapping[str, tuple[str, Mapping[str, Any]]],
    served: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The readable identity of a variant's result (see :func:`identity_hash`);
    ``served`` is what the provider says identifies its model (file hash, runtime)."""
    model = variant.model
    return {
        "provider": model.provider if model is not None else None,
        "model": model.id if model is not None else None,
        "params": dict(model.params) if model is not None else {},
        "base_url": model.base_url if model is not None else None,
        "served": dict(served) if served is not None else None,
        "retrieval": variant.retrieval.source if variant.retrieval else None,
        "retrieval_settings": _retrieval_settings(variant.retrieval),
        "retrieval_content": _source_digest(variant.retrieval, base_dir),
        "recipe": _recipe(variant.recipe),
        "dataset": digest([[c.id, c.fields if type(c.fields) is dict else dict(c.fields)] for c in cases], 16),
        "task": _task_settings(variant.task),
        "metrics": {key: {"metric": name, "args": dict(args)} for key, (name, args) in sorted(metrics.items())},
    }


def identity_hash(identity: Mapping[str, Any]) -> str:
    """The hash of an identity (``sha256:<hex>``)."""
    return digest(dict(identity))


def _recipe(recipe: "RecipeSpec") -> str:
    """The recipe's hash, after its name and version when it has them (``qa@2 sha256:...``)."""
    hashed = digest(asdict(recipe), 16)
    name, version = recipe.name, recipe.version
    if name is None:
        return hashed
    return f"{name}@{version} {hashed}" if version is not None else f"{name} {hashed}"


def _task_settings(task: "TaskSpec") -> dict[str, Any]:
    return {
        "sample": task.sample,
        "seed": task.seed,
        "repeat": task.repeat,
        "reduce": task.reduce,
        "cluster": task.cluster_field,
    }


def _retrieval_settings(retrieval: "RetrievalSpec | None") -> dict[str, Any] | None:
    if retrieval is None:
        return None
    return {"retriever": retrieval.retriever, "top_k": retrieval.top_k, "options": dict(retrieval.options)}


def _source_digest(retrieval: "RetrievalSpec | None", base_dir: Path) -> str | None:
    """A hash of the retrieval source's files (relative names and bytes)."""
    if retrieval is None or retrieval.source is None:
        return None
    root = (base_dir / retrieval.source).resolve()
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    h = hashlib.sha256()
    budget = MAX_HASHED_BYTES
    for path in files:
        if not path.exists():
            continue
        name = path.relative_to(root).as_posix() if root.is_dir() else path.name
        size = path.stat().st_size
        h.update(f"{name}\0{size}\0".encode())
        if size <= budget:
            h.update(path.read_bytes())
            budget -= size
    return f"sha256:{h.hexdigest()[:16]}"


def identity_changes(stored: Mapping[str, Any], current: Mapping[str, Any], prefix: str = "") -> list[str]:
    """What differs between two identities, one ``key: old -> new`` line per field
    (``params.temperature: 0 -> 0.7`` inside mappings)."""
    lines: list[str] = []
    for key in sorted(set(stored) | set(current)):
        old, new = stored.get(key), current.get(key)
        if old == new:
            continue
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            lines += identity_changes(old, new, f"{prefix}{key}.")
        else:
            lines.append(f"{prefix}{key}: {_show(old)} -> {_show(new)}")
    return lines


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, str):
        return value
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return text if len(text) <= 80 else digest(value, 12)
