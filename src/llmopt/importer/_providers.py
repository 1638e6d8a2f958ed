"""promptfoo ``providers`` as llmopt ``model`` mappings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..spec._problems import KeyPath
from ._notes import Notes, Source
from ._source import ref_path

#: OpenAI-compatible hosts: prefix -> (base URL, key variable).
COMPATIBLE = {
    "openrouter": ("https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
    "groq": ("https://api.groq.com/openai/v1", "GROQ_API_KEY"),
    "togetherai": ("https://api.together.xyz/v1", "TOGETHER_API_KEY"),
    "deepseek": ("https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"),
    "fireworks": ("https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY"),
    "perplexity": ("https://api.perplexity.ai", "PERPLEXITY_API_KEY"),
    "mistral": ("https://api.mistral.ai/v1", "MISTRAL_API_KEY"),
    "ollama": ("http://localhost:11434/v1", "OLLAMA_API_KEY"),
}
_OPENAI_OTHER = {"embedding", "embeddings", "completion", "assistant", "image", "moderation", "realtime",
                 "responses", "transcription", "speech", "chat-completion"}
_PARAMS = {
    "openai": ("temperature", "max_tokens", "max_completion_tokens", "top_p", "presence_penalty",
               "frequency_penalty", "stop", "seed"),
    "anthropic": ("temperature", "max_tokens", "top_p", "top_k", "stop_sequences"),
}


@dataclass(frozen=True)
class Target:
    """One provider of the matrix: its label and llmopt model (``python``: the file and
    function the generated adapter calls)."""

    label: str
    model: dict[str, Any]
    python: tuple[Path, str] | None = None


def load_providers(config: dict[str, Any], source: Source, notes: Notes) -> list[Target]:
    """Every provider that converts; the others go to ``notes``."""
    entries = config.get("providers", config.get("targets"))
    key = "providers" if "providers" in config else "targets"
    if isinstance(entries, (str, dict)):
        entries = [entries]
    found = []
    for i, entry in enumerate(entries or []):
        target = _entry(entry, (key, i), source, notes)
        if target is not None:
            found.append(target)
    return found


def _entry(entry: Any, path: KeyPath, source: Source, notes: Notes) -> Target | None:
    if isinstance(entry, str):
        return convert(entry, {}, _label(entry), path, source, notes)
    if isinstance(entry, dict) and isinstance(entry.get("id"), str):
        for key in sorted(set(entry) - {"id", "label", "config"}):
            notes.skip(source, (*path, key), "this provider option has no llmopt form")
        label = str(entry.get("label") or _label(entry["id"]))
        return convert(entry["id"], entry.get("config") or {}, label, path, source, notes)
    if isinstance(entry, dict) and len(entry) == 1:  # {"openai:gpt-4o": {config: ...}}
        (pid, body), = entry.items()
        body = body if isinstance(body, dict) else {}
        label = str(body.get("label") or _label(str(pid)))
        return convert(str(pid), body.get("config") or {}, label, (*path, pid), source, notes)
    notes.skip(source, path, "not a provider (an id, or {id, label, config})")
    return None


def _label(pid: str) -> str:
    """A provider's name in variant names: the model (``gpt-4o-mini``) or the file stem."""
    for prefix in ("python:", "file://"):
        if pid.startswith(prefix):
            return Path(pid[len(prefix):].split(":")[0]).stem
    return pid.split(":")[-1].split("/")[-1] or pid


def convert(pid: str, config: Any, label: str, path: KeyPath, source: Source, notes: Notes) -> Target | None:
    """The model of provider ``pid`` with ``config``; None (and a note) when unsupported."""
    model = _model(pid)
    if model is None:
        python = _python(pid, source.path.parent)
        if python is None:
            supported = "openai, anthropic, echo, python and OpenAI-compatible hosts"
            notes.skip(source, path, f"provider '{pid}' has no llmopt form (supported: {supported})")
            return None
        adapter: dict[str, Any] = {"provider": "python"}
        if isinstance(config, dict) and config:
            adapter["params"] = dict(config)
        return Target(label, adapter, python)
    if not isinstance(config, dict):
        notes.skip(source, (*path, "config"), "not a mapping")
        return Target(label, model)
    _apply_config(model, config, (*path, "config"), source, notes)
    return Target(label, model)


def _model(pid: str) -> dict[str, Any] | None:
    if pid == "echo":
        return {"provider": "echo"}
    parts = pid.split(":")
    if parts[0] == "openai" and len(parts) >= 2 and parts[1] not in _OPENAI_OTHER:
        model = ":".join(parts[2:]) if parts[1] == "chat" else ":".join(parts[1:])
        return {"provider": "openai", "id": model} if model else None
    if parts[0] == "anthropic" and len(parts) >= 3 and parts[1] == "messages":
        return {"provider": "anthropic", "id": ":".join(parts[2:])}
    if parts[0] in COMPATIBLE and len(parts) >= 2:
        rest = parts[2:] if parts[1] == "chat" and len(parts) > 2 else parts[1:]
        base_url, env = COMPATIBLE[parts[0]]
        return {"provider": "openai", "id": ":".join(rest), "base_url": base_url, "options": {"api_key_env": env}}
    return None


def _python(pid: str, base: Path) -> tuple[Path, str] | None:
    for prefix in ("python:", "file://"):
        if pid.startswith(prefix):
            where, _, function = pid[len(prefix):].partition(":")
            if where.endswith(".py"):
                return ref_path(base, where), function or "call_api"
    return None


def _apply_config(model: dict[str, Any], config: dict[str, Any], path: KeyPath, source: Source, notes: Notes) -> None:
    allowed = _PARAMS["anthropic" if model["provider"] == "anthropic" else "openai"]
    for key, value in config.items():
        if key in allowed:
            model.setdefault("params", {})[key] = value
        elif key == "apiBaseUrl" and model["provider"] == "openai":
            model["base_url"] = str(value)
        elif key == "apiHost" and model["provider"] == "openai":
            model["base_url"] = f"https://{value}/v1"
        elif key == "apiKeyEnvar":
            model.setdefault("options", {})["api_key_env"] = str(value)
        elif key == "apiKey":
            notes.skip(
                source,
                (*path, key),
                "keys are never written to a spec; llmopt reads them from the environment (model.options.api_key_env)",
            )
        else:
            notes.skip(source, (*path, key), "this provider setting has no llmopt form")
