"""What every loader produces: a title and a sequence of structured text blocks."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Block:
    """A paragraph-sized unit of text with the structure it sits under."""

    text: str
    heading_path: tuple[str, ...] = ()
    page: int | None = None
    is_heading: bool = False


@dataclass
class LoadedDocument:
    title: str
    mime_type: str
    blocks: list[Block]
    metadata: dict = field(default_factory=dict)


class LoaderError(ValueError):
    """The file is of a supported type but its content cannot be read (corrupt, undecodable, empty)."""


class UnsupportedFile(ValueError):
    """The file's type has no loader, or the file is binary: it is skipped, not failed."""
