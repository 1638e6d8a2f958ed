"""What an import could not carry over, each with the file, line and key path."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..spec._problems import KeyPath, Spots, key_text


@dataclass(frozen=True)
class Source:
    """A file read by the importer: how it is shown and where its keys are."""

    path: Path
    shown: str
    spots: Spots = field(default_factory=Spots)

    def where(self, path: KeyPath) -> str:
        """``file:line`` of ``path`` (its nearest located ancestor), else ``file``."""
        spot = self.spots.find(path)
        return f"{self.shown}:{spot[0]}" if spot else self.shown


@dataclass(frozen=True)
class Skipped:
    """One part of the config that was not converted."""

    where: str
    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.key}: {self.reason}"


@dataclass
class Notes:
    """The parts left out, collected while converting."""

    skipped: list[Skipped] = field(default_factory=list)

    def skip(self, source: Source, path: KeyPath, reason: str) -> None:
        entry = Skipped(source.where(path), key_text(path) or "(file)", reason)
        if entry not in self.skipped:
            self.skipped.append(entry)
