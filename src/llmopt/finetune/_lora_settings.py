"""The hyperparameters of local LoRA training: defaults, validation, overrides.

They come from the spec's ``finetune.hyperparameters`` mapping, then from command-line
flags; every value is checked here, before anything heavy is imported, so a typo is
reported at once with the key that holds it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping

from ..errors import FineTuneError

__all__ = ["LoraSettings", "TARGET_MODULES", "lora_settings"]

#: Projections a LoRA may adapt, by their transformers name, with the name of the same
#: weight in a llama-architecture GGUF file (``blk.N.<name>.weight``).
TARGET_MODULES: Mapping[str, str] = {
    "q_proj": "attn_q",
    "k_proj": "attn_k",
    "v_proj": "attn_v",
    "o_proj": "attn_output",
    "gate_proj": "ffn_gate",
    "up_proj": "ffn_up",
    "down_proj": "ffn_down",
}


@dataclass(frozen=True)
class LoraSettings:
    """Everything that decides what a local training run produces."""

    #: LoRA rank (inner dimension of the two low-rank factors).
    rank: int = 8
    #: LoRA scaling numerator: the update is ``alpha / rank * B @ A``.
    alpha: float = 16.0
    #: Projections adapted in every layer (transformers names).
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    #: Passes over the training examples.
    epochs: int = 4
    #: AdamW learning rate (constant).
    learning_rate: float = 5e-3
    #: Examples per optimizer step.
    batch_size: int = 8
    #: Tokens per example; longer examples are cut (the answer's end is lost).
    max_length: int = 256
    #: Seeds the LoRA initialization and the order of examples in every epoch.
    seed: int = 0
    #: CPU threads torch uses; fixed because a different count may change the sums.
    threads: int = 2

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (for the manifest)."""
        data = asdict(self)
        data["target_modules"] = list(self.target_modules)
        return data


_INTS = ("rank", "epochs", "batch_size", "max_length", "threads")
_FLOATS = ("alpha", "learning_rate")


def lora_settings(values: Mapping[str, Any], where: str = "finetune.hyperparameters") -> LoraSettings:
    """Settings from ``values`` over the defaults; every problem is reported at once."""
    known = {f.name for f in fields(LoraSettings)}
    problems = [f"{where}.{key}: unknown hyperparameter (known: {', '.join(sorted(known))})"
                for key in values if key not in known]
    clean: dict[str, Any] = {}
    for key, value in values.items():
        if key in known and value is not None:
            problem = _check(key, value)
            if problem:
                problems.append(f"{where}.{key}: {problem}")
            else:
                clean[key] = _convert(key, value)
    if problems:
        raise FineTuneError("\n".join(problems))
    return replace(LoraSettings(), **clean)


def _check(key: str, value: Any) -> str | None:
    if key in _INTS:
        ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
        return None if ok else f"must be a positive integer, got {value!r}"
    if key in _FLOATS:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
        return None if ok else f"must be a positive number, got {value!r}"
    if key == "seed":
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        return None if ok else f"must be a non-negative integer, got {value!r}"
    return _check_targets(value)


def _check_targets(value: Any) -> str | None:
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not names:
        return f"must be a list of projection names, got {value!r}"
    unknown = [n for n in names if str(n).strip() not in TARGET_MODULES]
    if unknown:
        return f"unknown projection(s) {', '.join(map(repr, unknown))} (known: {', '.join(TARGET_MODULES)})"
    return None


def _convert(key: str, value: Any) -> Any:
    if key == "target_modules":
        names = value.split(",") if isinstance(value, str) else value
        return tuple(dict.fromkeys(str(n).strip() for n in names))
    if key in _FLOATS:
        return float(value)
    return value
