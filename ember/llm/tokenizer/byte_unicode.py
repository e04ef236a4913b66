"""GPT-2's reversible byte <-> printable-character map, used by HF and GGUF byte-level vocabularies."""

from __future__ import annotations

from functools import cache


@cache
def byte_to_char() -> dict[int, str]:
    """Printable bytes map to themselves; the rest (controls, space, ...) to code points 256 and up."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    table = {b: chr(b) for b in printable}
    shifted = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + shifted)
            shifted += 1
    return table


@cache
def char_to_byte() -> dict[str, int]:
    return {char: b for b, char in byte_to_char().items()}


def token_bytes(token: str) -> bytes:
    """Bytes of a vocabulary entry written in GPT-2's byte-to-unicode alphabet."""
    table = char_to_byte()
    try:
        return bytes(table[char] for char in token)
    except KeyError as error:
        raise ValueError(f"token {token!r} has a character outside the byte-level alphabet") from error
