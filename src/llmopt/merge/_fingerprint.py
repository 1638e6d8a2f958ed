"""What a shard's results JSON carries beyond a run's: the shard, and per scenario the
fingerprint that says which run it is a part of.

A fingerprint names the spec's content, the llmopt version, the assertions the shard
gates after the merge, and each variant's identity hash (dataset content over every
case, recipe name, version and hash, retrieval, model id, parameters and served
identity, metric arguments: see :mod:`llmopt.engine.identity`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from ..dataset._shard import Shard

#: The reason of every assertion item a shard skips: its verdict needs every shard.
GATED = "gated after merge"


def llmopt_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("llmopt")
    except PackageNotFoundError:
        return "unknown"


def spec_digest(path: Path) -> str | None:
    """``sha256:<hex>`` of the spec file's bytes (None when it cannot be read)."""
    try:
        return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def spec_file(spec: str, root: Path) -> Path:
    """The spec of a results entry (written relative to the rootdir) as a path."""
    path = Path(spec)
    return path if path.is_absolute() else root / path


def fingerprint(entry: Mapping[str, Any], root: Path) -> dict[str, Any]:
    """The fingerprint of one scenario of a results document."""
    return {
        "llmopt": llmopt_version(),
        "spec": spec_digest(spec_file(str(entry["spec"]), root)),
        "assertions": sorted(str(a["id"]) for a in entry.get("assertions", [])),
        "variants": {name: v.get("identity_hash") for name, v in sorted(entry.get("variants", {}).items())},
    }


def shard_doc(doc: Mapping[str, Any], shard: "Shard", root: Path) -> dict[str, Any]:
    """A run's results document as a shard writes it: ``shard: {k, n}``, and a
    ``fingerprint`` in every scenario."""
    scenarios = [dict(entry) | {"fingerprint": fingerprint(entry, root)} for entry in doc.get("scenarios", [])]
    return dict(doc) | {"shard": shard.to_json(), "scenarios": scenarios}
