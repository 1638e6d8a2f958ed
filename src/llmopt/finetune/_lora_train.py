"""Training a LoRA adapter on CPU with torch, transformers and peft.

The base model and its tokenizer (with the chat template) are read from the GGUF
file itself (transformers dequantizes it to float32), so nothing is downloaded. The
loss counts only the assistant's tokens of each example, laid out by the model's
own chat template: the tokens the model must learn to produce. A run is seeded and
uses fixed algorithms and a fixed thread count, so the same data and settings give
the same adapter on one machine.

Heavy imports (torch, transformers, peft) happen inside the functions: this module
is imported only by ``llmopt finetune train``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from ..errors import FineTuneError
from ._lora_gguf import LoraWeights
from ._lora_settings import LoraSettings

if TYPE_CHECKING:
    import torch

__all__ = ["EXTRA_HINT", "EncodedExample", "TrainedLora", "encode_example", "load_base", "train_lora"]

EXTRA_HINT = "local fine-tuning needs torch, transformers, peft and gguf: pip install 'llmopt[finetune-local]'"
_IGNORE = -100
Messages = Sequence[Mapping[str, str]]


@dataclass(frozen=True)
class EncodedExample:
    """Token ids of one chat example and its labels (-100 where no loss is taken)."""

    input_ids: tuple[int, ...]
    labels: tuple[int, ...]


@dataclass(frozen=True)
class TrainedLora:
    """What a training run produced."""

    weights: tuple[LoraWeights, ...]
    epoch_losses: tuple[float, ...]
    seconds: float
    heads: Mapping[str, int]
    trained_tokens: int


def require_runtime() -> None:
    """Raise FineTuneError naming the extra when a training library is missing."""
    for module in ("torch", "transformers", "peft", "gguf"):
        try:
            __import__(module)
        except ImportError as exc:
            raise FineTuneError(f"{EXTRA_HINT} ({exc})") from None


def load_base(path: Path, threads: int) -> tuple[Any, Any]:
    """The model (float32, dequantized) and tokenizer read from a GGUF file."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")  # transformers' GGUF loader draws a bar
    require_runtime()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    torch.set_num_threads(threads)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    folder, name = str(path.parent), path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except Exception as exc:
        raise FineTuneError(f"cannot load {path} for training: {type(exc).__name__}: {exc}") from exc
    if not getattr(tokenizer, "chat_template", None):
        raise FineTuneError(f"{path} has no chat template in its metadata; cannot lay out chat examples")
    return model, tokenizer


def encode_example(tokenizer: Any, messages: Messages, max_length: int) -> EncodedExample:
    """The example laid out by the chat template; labels only on the final
    assistant message (its text and the end-of-turn marker)."""
    if not messages or messages[-1].get("role") != "assistant":
        raise FineTuneError("a training example must end with an assistant message")
    msgs = [dict(m) for m in messages]
    prompt = tokenizer.apply_chat_template(msgs[:-1], tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(msgs, tokenize=False)
    if not full.startswith(prompt):
        raise FineTuneError("the chat template does not render the answer after the prompt")
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])[:max_length]
    offsets = list(enc["offset_mapping"])[:max_length]
    labels = [tok if start >= len(prompt) else _IGNORE for tok, (start, _end) in zip(ids, offsets, strict=True)]
    return EncodedExample(tuple(ids), tuple(labels))


def _batch(examples: Sequence[EncodedExample], pad_id: int) -> dict[str, "torch.Tensor"]:
    """Right-padded tensors for one optimizer step."""
    import torch

    width = max(len(e.input_ids) for e in examples)
    ids = [list(e.input_ids) + [pad_id] * (width - len(e.input_ids)) for e in examples]
    labels = [list(e.labels) + [_IGNORE] * (width - len(e.labels)) for e in examples]
    mask = [[1] * len(e.input_ids) + [0] * (width - len(e.input_ids)) for e in examples]
    return {
        "input_ids": torch.tensor(ids),
        "labels": torch.tensor(labels),
        "attention_mask": torch.tensor(mask),
    }


def _seed(settings: LoraSettings) -> None:
    import torch

    torch.manual_seed(settings.seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(settings.threads)


def _peft_model(model: Any, settings: LoraSettings) -> Any:
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=settings.rank,
        # peft annotates lora_alpha as int, but only divides by it: a float alpha is honoured.
        lora_alpha=settings.alpha,  # type: ignore[arg-type]
        target_modules=list(settings.target_modules),
        lora_dropout=0.0,
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def train_lora(
    model: Any,
    tokenizer: Any,
    examples: Sequence[Messages],
    settings: LoraSettings,
    progress: Callable[[int, float], None] | None = None,
) -> TrainedLora:
    """Train a LoRA on ``examples``; ``progress(epoch, mean loss)`` after each epoch."""
    import torch

    if not examples:
        raise FineTuneError("no training examples")
    _seed(settings)
    encoded = [encode_example(tokenizer, m, settings.max_length) for m in examples]
    trained_tokens = sum(1 for e in encoded for t in e.labels if t != _IGNORE)
    if not trained_tokens:
        raise FineTuneError(f"no answer token fits in max_length={settings.max_length}")
    peft_model = _peft_model(model, settings)
    peft_model.train()
    params = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=0.0)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    start = time.perf_counter()
    losses = []
    for epoch in range(settings.epochs):
        loss = _epoch(peft_model, optimizer, encoded, settings, epoch, pad_id)
        losses.append(loss)
        if progress is not None:
            progress(epoch + 1, loss)
    seconds = time.perf_counter() - start
    config = model.config
    heads = {"q_proj": config.num_attention_heads, "k_proj": config.num_key_value_heads}
    return TrainedLora(tuple(_weights(peft_model)), tuple(losses), seconds, heads, trained_tokens)


def _epoch(
    model: Any, optimizer: Any, encoded: Sequence[EncodedExample], settings: LoraSettings, epoch: int, pad_id: int
) -> float:
    """One pass in a seeded order; the mean loss per answer token."""
    import torch

    order = torch.randperm(len(encoded), generator=torch.Generator().manual_seed(settings.seed * 1000 + epoch))
    total, tokens = 0.0, 0
    for first in range(0, len(encoded), settings.batch_size):
        chosen = [encoded[i] for i in order[first:first + settings.batch_size].tolist()]
        batch = _batch(chosen, pad_id)
        optimizer.zero_grad(set_to_none=True)
        loss, count = _answer_loss(model, batch)
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * count
        tokens += count
    return total / max(tokens, 1)


def _answer_loss(model: Any, batch: Mapping[str, "torch.Tensor"]) -> tuple["torch.Tensor", int]:
    """Mean cross-entropy of the answer tokens, and their count.

    The output projection (a 49k-word vocabulary for SmolLM2) runs only on the
    positions that predict an answer token, not on the whole prompt: the same loss
    as the model's own, for a fifth less work per step.
    """
    import torch.nn.functional as F

    causal_lm = model.get_base_model()
    hidden = causal_lm.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    targets = batch["labels"][:, 1:]
    chosen = targets != _IGNORE
    logits = causal_lm.lm_head(hidden[:, :-1][chosen])
    return F.cross_entropy(logits.float(), targets[chosen]), int(chosen.sum())


def _weights(peft_model: Any) -> list[LoraWeights]:
    """The trained factors of every adapted projection, as float32 numpy arrays."""
    found = []
    for name, module in peft_model.named_modules():
        if not hasattr(module, "lora_A") or "default" not in getattr(module, "lora_A", {}):
            continue
        parts = name.split(".")
        layer = int(parts[parts.index("layers") + 1])
        a = module.lora_A["default"].weight.detach().float().numpy().copy()
        b = module.lora_B["default"].weight.detach().float().numpy().copy()
        found.append(LoraWeights(layer, parts[-1], a, b))
    if not found:
        raise FineTuneError("the LoRA adapted no projection: check target_modules")
    return found
