"""Converted copies of GGUF files: a model run at another precision than it is stored in.

The embedded model ships as Q4_1, which llama.cpp's fast CPU matrix kernels do not
cover; a Q8_0 copy of it runs about 1.3 times faster and stays next to the shipped
weights (``bench/local.py``: mean KL divergence 0.006 of the next-token distributions),
though greedy answers may differ.
The copy is made once by llama.cpp's own quantizer and kept in a user-level cache
folder, named by the source file's sha256, the precision and the llama.cpp version, so
a changed source or runtime never reuses an old copy.
"""

from __future__ import annotations

import ctypes
import logging
import os
import tempfile
from pathlib import Path

from ..errors import ProviderUnavailable
from ._gguf import RUNTIME_HINT, gguf_file_type

__all__ = ["PRECISIONS", "FILE_PRECISION", "models_cache", "converted_copy"]

#: ``model.options.precision``: ``file`` runs the file as stored; the others name the
#: precision most weights are converted to (llama.cpp's ``LLAMA_FTYPE_MOSTLY_*``).
FILE_PRECISION = "file"
PRECISIONS = (FILE_PRECISION, "Q8_0", "F16")
_FTYPE_NAMES = {"Q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0", "F16": "LLAMA_FTYPE_MOSTLY_F16"}
#: Overrides the folder converted models are kept in.
CACHE_ENV = "LLMOPT_MODELS_CACHE"


def models_cache() -> Path:
    """Where converted models are kept: ``$LLMOPT_MODELS_CACHE``, else
    ``$XDG_CACHE_HOME/llmopt/gguf``, else ``~/.cache/llmopt/gguf``."""
    given = os.environ.get(CACHE_ENV)
    if given:
        return Path(given).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "llmopt" / "gguf"


def converted_copy(source: Path, sha256: str, precision: str, runtime: str | None) -> Path:
    """The copy of ``source`` (whose digest is ``sha256``) at ``precision``, made now if
    it is not in the cache yet (slow, about a second for the embedded model: call it
    from a worker thread). Falls back to the temporary folder when the cache folder
    cannot be written."""
    name = f"{source.stem}.{precision}.{sha256[:16]}.llama-cpp-{runtime or 'unknown'}.gguf"
    folders = [models_cache(), Path(tempfile.gettempdir()) / f"llmopt-gguf-{_user()}"]
    for folder in folders:
        target = folder / name
        if target.is_file() and gguf_file_type(target) == precision:
            return target
    problems = []
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            return _convert(source, folder / name, precision)
        except OSError as exc:
            problems.append(f"{folder}: {exc.strerror or exc}")
    raise ProviderUnavailable(f"cannot write the {precision} copy of {source.name}: {'; '.join(problems)}")


def _convert(source: Path, target: Path, precision: str) -> Path:
    """Quantize ``source`` into ``target`` (written beside it, then renamed into place,
    so a reader never sees half a file and two processes may convert at once)."""
    try:
        import llama_cpp
    except ImportError:
        raise ProviderUnavailable(RUNTIME_HINT) from None
    handle, staging = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(handle)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, _FTYPE_NAMES[precision])
    params.allow_requantize = True
    # llama.cpp reports every tensor it converts; llama-cpp-python prints its log only
    # at this logger's level.
    logger = logging.getLogger("llama-cpp-python")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        status = llama_cpp.llama_model_quantize(
            str(source).encode(), staging.encode(), ctypes.byref(params)
        )
        if status != 0 or gguf_file_type(Path(staging)) != precision:
            raise ProviderUnavailable(
                f"llama.cpp could not convert {source} to {precision} (status {status})"
            )
        os.chmod(staging, 0o644)  # mkstemp makes it private; the copy is as readable as its source
        os.replace(staging, target)
    finally:
        logger.setLevel(level)
        Path(staging).unlink(missing_ok=True)
    return target


def _user() -> str:
    try:
        return str(os.getuid())
    except AttributeError:  # Windows
        return os.environ.get("USERNAME", "user")
