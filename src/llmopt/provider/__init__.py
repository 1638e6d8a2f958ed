"""Model backends: the Provider protocol and the built-in provider types.

Each provider lives in its own module; a provider's runtime (llama_cpp, an SDK) is
imported only when that provider is first used.
"""

from __future__ import annotations

from ._base import Message, Provider, ProviderBase, ProviderType, Request, Response, declared_provider
from ._usage import Usage
from .anthropic import AnthropicProvider, AnthropicProviderType
from .echo import EchoProvider, EchoProviderType
from .local import LocalProvider, LocalProviderType
from .openai import OpenAIProvider, OpenAIProviderType
from .python import PythonProvider, PythonProviderType

__all__ = [
    "Message",
    "Provider",
    "ProviderBase",
    "Usage",
    "declared_provider",
    "ProviderType",
    "Request",
    "Response",
    "AnthropicProvider",
    "AnthropicProviderType",
    "EchoProvider",
    "EchoProviderType",
    "LocalProvider",
    "LocalProviderType",
    "OpenAIProvider",
    "OpenAIProviderType",
    "PythonProvider",
    "PythonProviderType",
    "builtin_provider_types",
]


def builtin_provider_types() -> list[ProviderType]:
    """Fresh instances of the built-in provider types (cheap: nothing is loaded)."""
    return [
        EchoProviderType(),
        PythonProviderType(),
        LocalProviderType(),
        OpenAIProviderType(),
        AnthropicProviderType(),
    ]
