"""Answer scoring: numeric match with tolerance, normalized containment for short answers."""

from __future__ import annotations

import re
import unicodedata

_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")
_SCALE = {
    "thousand": 1e3,
    "k": 1e3,
    "million": 1e6,
    "m": 1e6,
    "billion": 1e9,
    "b": 1e9,
    "trillion": 1e12,
    "t": 1e12,
}
_NUMBER = re.compile(
    r"(?<![\w.])(\d+(?:,\d{3})*(?:\.\d+)?|\.\d+)"  # 8,602 · 3.3 · .5
    r"(?:\s*[×x\*]\s*10\^?\s*([-⁻]?[\d⁰¹²³⁴⁵⁶⁷⁸⁹]+))?"  # × 10¹⁸ / x10^18
    r"(?:e([-+]?\d+))?"  # 1e9
    r"(?:\s*(thousand|million|billion|trillion)|([kmbt])(?![a-z]))?",  # "70 billion", "66M" (not "412 m")
    re.IGNORECASE,
)


def numbers(text: str) -> list[float]:
    values = []
    for mantissa, power, exponent, word, letter in _NUMBER.findall(text):
        scale = word or letter
        value = float(mantissa.replace(",", ""))
        if power:
            value *= 10 ** int(power.translate(_SUPERSCRIPTS))
        if exponent:
            value *= 10 ** int(exponent)
        if scale:
            value *= _SCALE[scale.lower()]
        values.append(value)
    return values


def numeric_match(response: str, gold: float | str, tolerance: float = 0.01) -> bool:
    """The gold number (the first one in a gold string) appears in the response within ``tolerance``."""
    target = gold if isinstance(gold, int | float) else (numbers(str(gold)) or [None])[0]
    if target is None:
        return False
    return any(abs(v - target) <= tolerance * max(abs(target), 1e-12) for v in numbers(response))


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join(re.sub(r"[^\w\s.%]", " ", text).split())


def contains_match(response: str, gold: str) -> bool:
    """The gold answer (minus a parenthesised aside) appears in the response, after normalization."""
    core = normalize(re.sub(r"\(.*?\)", "", gold))
    return bool(core) and core in normalize(response)


def answer_match(response: str, gold: float | str, answer_type: str, tolerance: float = 0.01) -> bool:
    if answer_type == "numeric":
        return numeric_match(response, gold, tolerance)
    return contains_match(response, str(gold))


def passage_contains(passage: str, gold: float | str, answer_type: str) -> bool:
    """A cited passage supports the answer when it contains the gold number / text."""
    return answer_match(passage, gold, answer_type)
