"""Incremental decoding for generation: text comes out only once its UTF-8 bytes are complete."""

from __future__ import annotations

import codecs
from collections.abc import Sequence


class StreamDecoder:
    """Feed token ids one at a time; ``push`` returns only whole characters, never half of one.

    Bytes that can never form valid UTF-8 come out as U+FFFD, like ``Tokenizer.decode``.
    """

    def __init__(self, token_bytes: Sequence[bytes]) -> None:
        self._token_bytes = token_bytes
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, token_id: int) -> str:
        if not 0 <= token_id < len(self._token_bytes):
            raise ValueError(f"token id {token_id} is outside the vocabulary (size {len(self._token_bytes)})")
        return self._utf8.decode(self._token_bytes[token_id])

    def flush(self) -> str:
        """Emit what is left at the end of the stream (an unfinished character becomes U+FFFD)."""
        return self._utf8.decode(b"", final=True)
