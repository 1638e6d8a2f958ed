"""Writing a trained LoRA as a llama.cpp adapter file (GGUF), with the ``gguf`` package.

llama.cpp applies an adapter to the tensors of the base GGUF it names: for a base
weight ``blk.N.attn_q.weight`` (``out x in``) the adapter holds
``blk.N.attn_q.weight.lora_a`` (``rank x in``, PEFT's ``lora_A``) and
``blk.N.attn_q.weight.lora_b`` (``out x rank``, PEFT's ``lora_B``), and scales
their product by ``adapter.lora.alpha / rank``.

One convention needs care: llama-architecture GGUF files store the rows of the query
and key projections in a different order than transformers (rotary halves
interleaved per head), and transformers undoes that order when it loads a GGUF. A
LoRA trained in transformers therefore has its ``lora_B`` rows put back into the
file's order for ``attn_q`` (per attention head) and ``attn_k`` (per key-value head).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from ..errors import FineTuneError
from ._lora_settings import TARGET_MODULES

if TYPE_CHECKING:
    import numpy as np

__all__ = ["LoraWeights", "gguf_rows", "write_gguf_adapter", "gguf_architecture"]


@dataclass(frozen=True)
class LoraWeights:
    """One adapted projection of one layer, in transformers' conventions (float32)."""

    layer: int
    module: str
    a: "np.ndarray"
    b: "np.ndarray"


def gguf_rows(b: "np.ndarray", heads: int) -> "np.ndarray":
    """``b``'s rows in a llama GGUF's order: within each head, the even rotary
    dimensions first, then the odd ones, as ``(heads, 2, half)`` -> ``(heads, half, 2)``."""
    out = b.shape[0]
    if out % (2 * heads):
        raise FineTuneError(f"cannot reorder {out} rows into {heads} heads")
    return b.reshape(heads, 2, out // heads // 2, *b.shape[1:]).swapaxes(1, 2).reshape(b.shape)


def tensor_name(layer: int, module: str) -> str:
    """The base GGUF tensor a projection's LoRA applies to."""
    return f"blk.{layer}.{TARGET_MODULES[module]}.weight"


def gguf_architecture(base_path: Path) -> str:
    """The ``general.architecture`` of a GGUF file (the adapter must repeat it)."""
    import gguf

    reader = gguf.GGUFReader(str(base_path))
    field = reader.fields.get("general.architecture")
    if field is None:
        raise FineTuneError(f"{base_path}: no general.architecture in the GGUF metadata")
    return bytes(field.parts[field.data[0]]).decode("utf-8")


def write_gguf_adapter(
    path: Path,
    weights: list[LoraWeights],
    *,
    alpha: float,
    architecture: str,
    heads: Mapping[str, int],
    dtype: str = "float16",
) -> None:
    """Write ``weights`` as a llama.cpp LoRA adapter file.

    ``heads`` gives the head count for the projections whose rows GGUF reorders
    (``{"q_proj": n_head, "k_proj": n_kv_head}``).
    """
    import gguf
    import numpy as np

    if architecture != "llama":
        raise FineTuneError(f"LoRA export supports llama-architecture models, not {architecture!r}")
    writer = gguf.GGUFWriter(str(path), arch=architecture)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(alpha))
    for w in sorted(weights, key=lambda w: (w.layer, list(TARGET_MODULES).index(w.module))):
        b = gguf_rows(w.b, heads[w.module]) if w.module in heads else w.b
        name = tensor_name(w.layer, w.module)
        writer.add_tensor(f"{name}.lora_a", np.ascontiguousarray(w.a, dtype=dtype))
        writer.add_tensor(f"{name}.lora_b", np.ascontiguousarray(b, dtype=dtype))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
