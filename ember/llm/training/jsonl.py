"""Reading training JSONL: one object per line, errors that name the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path


class DataError(ValueError):
    """Bad training data; the message names the file and line."""

    def __init__(self, path: Path, line: int, problem: str) -> None:
        super().__init__(f"{path}:{line}: {problem}")
        self.path, self.line = path, line


def read_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line of ``path``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no training data at {path}")
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(
                    path, number, f"not valid JSON ({error.msg} at column {error.colno})"
                ) from None
            if not isinstance(row, dict):
                raise DataError(path, number, f"expected a JSON object, got {type(row).__name__}")
            yield number, row


def check_messages(path: Path, line: int, messages: object, field: str) -> list[dict]:
    """``messages`` as a list of chat messages with known roles, else a DataError naming ``field``."""
    if not isinstance(messages, list) or not messages:
        raise DataError(path, line, f"{field!r} must be a non-empty list of messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in (
            "system",
            "user",
            "assistant",
            "tool",
        ):
            raise DataError(path, line, f"{field}[{index}] needs a role among system, user, assistant, tool")
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            raise DataError(path, line, f"{field}[{index}].content must be a string")
    return messages
