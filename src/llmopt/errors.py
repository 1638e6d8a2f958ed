"""The one exception hierarchy of llmopt.

Every error a user can cause or meet derives from :class:`LLMOptError`; the pytest
plugin maps each kind to the right pytest channel (collection error, setup error,
usage error) so that a user's own mistake never shows as a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

__all__ = [
    "LLMOptError",
    "Problem",
    "SpecError",
    "DatasetError",
    "RenderError",
    "ProviderError",
    "ProviderUnavailable",
    "ProviderAuthError",
    "MetricError",
    "CacheMiss",
    "BudgetExceeded",
    "PluginError",
    "FineTuneError",
]


class LLMOptError(Exception):
    """Base class of every error llmopt raises on purpose."""


def format_location(path: str, line: int | None, col: int | None) -> str:
    """``path:line:col``, leaving out what is not known."""
    if line is None:
        return path
    return f"{path}:{line}" if col is None else f"{path}:{line}:{col}"


@dataclass(frozen=True)
class Problem:
    """One problem found in a user's file, with where it is."""

    path: str
    line: int | None
    col: int | None
    key: str
    message: str

    def __str__(self) -> str:
        key = f" {self.key}:" if self.key else ""
        return f"{format_location(self.path, self.line, self.col)}:{key} {self.message}"


class SpecError(LLMOptError):
    """A spec file has one or more problems; all of them are listed."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__(self.render())

    def render(self) -> str:
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in spec:"
        return "\n".join([head, *(f"  {p}" for p in self.problems)])


class DatasetError(LLMOptError):
    """A dataset file or row is invalid (the message names file and line)."""


class RenderError(LLMOptError):
    """A prompt template could not be rendered for a case."""


class ProviderError(LLMOptError):
    """A provider failed to produce an output for one request."""


class ProviderUnavailable(ProviderError):
    """A provider cannot run at all (missing runtime, model file, key...).

    Unlike a :class:`ProviderError` for one case, this stops a whole variant.
    """


class ProviderAuthError(ProviderUnavailable):
    """The provider refused the credentials (or none were found): stops the scenario.

    The message names the environment variable that holds the key.
    """


class MetricError(LLMOptError):
    """A metric could not score a case (for example: it needs an expected value)."""


class CacheMiss(LLMOptError):
    """A response was required from the cache and was not there."""


class BudgetExceeded(LLMOptError):
    """The run's spending budget is used up."""


class PluginError(LLMOptError):
    """A plugin could not be loaded or registers something invalid."""


class FineTuneError(LLMOptError):
    """Training data, a training file or a fine-tuning job is unusable (the message
    says which and why)."""
