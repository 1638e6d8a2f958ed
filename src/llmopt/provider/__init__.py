"""Model backends: the Provider protocol and the built-in provider types.

Each provider lives in its own module; a provider's runtime (llama_cpp, an SDK) is
imported only when that provider is first used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._base import Message, Provider, ProviderBase, ProviderType, Request, Response, declared_provider
from ._usage import Usage

if TYPE_CHECKING:  # for type checkers: the names `__getattr__` imports on first use
    from .anthropic import AnthropicProvider as AnthropicProvider
    from .anthropic import AnthropicProviderType as AnthropicProviderType
    from .echo import EchoProvider as EchoProvider
    from .echo import EchoProviderType as EchoProviderType
    from .local import LocalProvider as LocalProvider
    from .local import LocalProviderType as LocalProviderType
    from .openai import OpenAIProvider as OpenAIProvider
    from .openai import OpenAIProviderType as OpenAIProviderType
    from .python import PythonProvider as PythonProvider
    from .python import PythonProviderType as PythonProviderType

#: The built-in providers, each imported on first use (importing ``echo`` imports no
#: other provider).
_LAZY = {
    "AnthropicProvider": "anthropic",
    "AnthropicProviderType": "anthropic",
    "EchoProvider": "echo",
    "EchoProviderType": "echo",
    "LocalProvider": "local",
    "LocalProviderType": "local",
    "OpenAIProvider": "openai",
    "OpenAIProviderType": "openai",
    "PythonProvider": "python",
    "PythonProviderType": "python",
}

__all__ = [
    "Message",
    "Provider",
    "ProviderBase",
    "ProviderType",
    "Request",
    "Response",
    "Usage",
    "declared_provider",
    *_LAZY,
    "builtin_provider_types",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'llmopt.provider' has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)


def builtin_provider_types() -> list[ProviderType]:
    """Fresh instances of the built-in provider types (cheap: nothing is loaded)."""
    from .anthropic import AnthropicProviderType
    from .echo import EchoProviderType
    from .local import LocalProviderType
    from .openai import OpenAIProviderType
    from .python import PythonProviderType

    return [
        EchoProviderType(),
        PythonProviderType(),
        LocalProviderType(),
        OpenAIProviderType(),
        AnthropicProviderType(),
    ]
