"""The ``echo`` provider: answers with the rendered user text, for checking recipes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from ._base import ProviderBase, Request, Response

if TYPE_CHECKING:
    from ..spec._model import ModelSpec

__all__ = ["EchoProvider", "EchoProviderType"]


class EchoProvider(ProviderBase):
    """Returns ``request.prompt`` unchanged; never worth caching."""

    concurrency: int = 64
    cacheable: bool = False
    #: No call costs money, so a used-up budget does not stop it.
    free: bool = True

    def identity(self) -> Mapping[str, Any]:
        return {}

    async def generate(self, request: Request) -> Response:
        start = time.perf_counter()
        text = request.prompt
        return Response(text=text, latency_s=time.perf_counter() - start, model="echo")


class EchoProviderType:
    """``model: {provider: echo}``: any ``id`` is ignored."""

    name: str = "echo"

    def check(self, spec: ModelSpec, base_dir: Path) -> list[str]:
        return []

    def create(self, spec: ModelSpec, base_dir: Path) -> EchoProvider:
        return EchoProvider()
