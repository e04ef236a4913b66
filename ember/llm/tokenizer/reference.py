"""The specification of encoding, in plain Python: slow, obvious, and the oracle for the fast path.

1. Allowed special tokens are cut out of the text first; everything else is ordinary text.
2. Ordinary text is split with the pattern; each piece is encoded to UTF-8 bytes on its own.
3. A piece that is itself a token becomes that token. Otherwise start from single bytes and repeatedly
   merge the adjacent pair whose concatenation has the lowest rank (the leftmost such pair on a tie),
   until no adjacent pair concatenates to a known token.
"""

from __future__ import annotations

import regex


def bpe_piece(piece: bytes, ranks: dict[bytes, int]) -> list[int]:
    """Ranks of the tokens that BPE splits ``piece`` into."""
    if piece in ranks:
        return [ranks[piece]]
    parts = [piece[i : i + 1] for i in range(len(piece))]
    while len(parts) > 1:
        best_index, best_rank = -1, None
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and (best_rank is None or rank < best_rank):
                best_index, best_rank = i, rank
        if best_rank is None:
            break
        parts[best_index : best_index + 2] = [parts[best_index] + parts[best_index + 1]]
    return [ranks[part] for part in parts]


def reference_encode(
    text: str, pattern: str, ranks: dict[bytes, int], allowed_special: dict[str, int] | None = None
) -> list[int]:
    """Encode ``text``; ``allowed_special`` maps the special tokens that may be matched to their ids."""
    compiled = regex.compile(pattern)
    segments: list[str] = [text]
    if allowed_special:
        alternatives = "|".join(regex.escape(s) for s in sorted(allowed_special, key=len, reverse=True))
        segments = regex.split(f"({alternatives})", text)
    ids: list[int] = []
    for index, segment in enumerate(segments):
        if index % 2 == 1:  # odd positions of a capturing split are the special tokens themselves
            ids.append(allowed_special[segment])
            continue
        for piece in compiled.findall(segment):
            ids.extend(bpe_piece(piece.encode("utf-8"), ranks))
    return ids
