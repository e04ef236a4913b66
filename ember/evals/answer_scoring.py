"""Answer scoring that a citation marker or a model name cannot fool.

Citation markers (``[2]``, ``[1, 3]``) are removed before anything is matched. A number counts only as a
quantity: not glued to a word ("4-gram", "4-bit", "A100", "GPT-3"), not the version after a name
("Llama 2", "Figure 3"). Quantities understand thousands separators, decimals, ``1e-8``, ``3.3 × 10¹⁸``,
scale words and letters ("70 billion", "66M"), percent, and the qualifiers ``~ + < > ± up to``, which are
kept on the gold side only to set how close a match must be.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

MARKER = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")
_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")
_SCALE = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12, "k": 1e3, "m": 1e6, "b": 1e9}
_QUANTITY = re.compile(
    r"(?<![\w.\-/])(?<![A-Za-z]-)"  # not inside a word, a name such as GPT-3, or a path
    r"(?P<mantissa>\d+(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?:\s*[×x*]\s*10\^?(?P<power>[-⁻]?[\d⁰¹²³⁴⁵⁶⁷⁸⁹]+))?"  # 3.3 × 10¹⁸, 3x10^18
    r"(?:[eE](?P<exponent>[-+]?\d+))?"  # 1e-8
    r"(?:\s*(?P<word>thousand|million|billion|trillion)\b|(?P<letter>[kKmMbB])(?![A-Za-z]))?"
    r"(?P<percent>\s*%)?"
    r"(?![\w-]*[A-Za-z])"  # "4-gram", "4-bit", "3D" are words, not quantities
    r"(?!\.\d)"  # "3.5.1" is a version
)
# A capitalised word right before a number names a thing ("Llama 2", "Table 3"), unless it is one of these.
_LEAD_INS = frozenset(
    "a about above after almost an and approximately are around as at below between by each exactly from "
    "has have in is just nearly of only over roughly some than the to under until up was were with "
    "answer result total".split()
)
_NAME_BEFORE = re.compile(r"\b([A-Z][A-Za-z]*)\s+$")
APPROXIMATE_TOLERANCE = 0.05  # a gold value marked "~" is itself rounded
DEFAULT_TOLERANCE = 0.01  # relative, for gold numbers given without a tolerance


@dataclass(frozen=True)
class Quantity:
    value: float
    percent: bool = False
    half_unit: float = 0.0  # half a unit of the last digit written: "50,000" → 0.5, "3.3 × 10¹⁸" → 5e16


def _is_year_label(text: str, match: re.Match) -> bool:
    """A year naming something ("the 2017 Transformer") or citing a source ("(2017)", "et al., 2017")."""
    if not re.fullmatch(r"(19|20)\d\d", match.group(0)):
        return False
    before, after = text[: match.start()], text[match.end() :]
    return bool(
        re.match(r" [A-Z]", after)
        or (before.endswith("(") and after.startswith(")"))
        or before.endswith("al., ")
    )


def strip_citations(text: str) -> str:
    return MARKER.sub("", text)


def quantities(text: str) -> list[Quantity]:
    """Every quantity in ``text`` (citation markers removed first), in order."""
    text = unicodedata.normalize("NFKC", strip_citations(text)).replace("\u2212", "-")
    found = []
    for match in _QUANTITY.finditer(text):
        name = _NAME_BEFORE.search(text[: match.start()])
        if name and name.group(1).lower() not in _LEAD_INS:
            continue
        if _is_year_label(text, match):
            continue
        mantissa = match["mantissa"].replace(",", "")
        factor = 1.0
        if match["power"]:
            factor *= 10 ** int(match["power"].translate(_SUPERSCRIPTS))
        if match["exponent"]:
            factor *= 10 ** int(match["exponent"])
        scale = match["word"] or match["letter"]
        if scale:
            factor *= _SCALE[scale.lower()]
        decimals = len(mantissa.partition(".")[2])
        found.append(Quantity(float(mantissa) * factor, bool(match["percent"]), 0.5 * 10**-decimals * factor))
    return found


def quantity_matches(found: Quantity, gold: Quantity, tolerance: float = 0.0) -> bool:
    """Equal at the precision the gold is written in ("50,000" is not 50,257), or within the relative
    ``tolerance``; a gold percent also matches its fraction (17.7% ~ 0.177)."""

    def close(value: float) -> bool:  # a value halfway ("12.5" for "12") rounds away: not a match
        gap = abs(value - gold.value)
        return gap <= tolerance * abs(gold.value) * (1 + 1e-9) or gap < gold.half_unit * (1 - 1e-9)

    return close(found.value) or (gold.percent and not found.percent and close(found.value * 100))


def gold_tolerance(gold: str, tolerance: float) -> float:
    """A gold marked "~" is itself rounded: it allows APPROXIMATE_TOLERANCE."""
    return max(tolerance, APPROXIMATE_TOLERANCE) if "~" in gold else tolerance


def numeric_match(response: str, gold: float | str, tolerance: float | None = None) -> bool:
    """The gold quantity (the first one of a gold string) appears in the response as a quantity.

    A gold number (agent tasks) matches within ``tolerance`` (default 1%); a gold string at the
    precision it is written in, or within ``tolerance`` when one is given."""
    if isinstance(gold, int | float):
        target = Quantity(float(gold))
        tolerance = DEFAULT_TOLERANCE if tolerance is None else tolerance
    else:
        written = quantities(gold)[:1]
        if not written:
            return False
        target, tolerance = written[0], gold_tolerance(gold, tolerance or 0.0)
    return any(quantity_matches(q, target, tolerance) for q in quantities(response))


def all_quantities_match(response: str, gold: str, tolerance: float | None = None) -> bool | None:
    """Every quantity of the gold (a range, a pair, before → after) appears in the response; None when
    the gold holds no quantity."""
    targets = quantities(gold)
    if not targets:
        return None
    found = quantities(response)
    tolerance = gold_tolerance(gold, tolerance or 0.0)
    return all(any(quantity_matches(q, t, tolerance) for q in found) for t in targets)


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", strip_citations(text)).lower()
    return " ".join(re.sub(r"[^\w\s.%]", " ", text).replace(". ", " ").split()).rstrip(".")


def exact_match(response: str, gold: str) -> bool:
    """The gold answer (minus a parenthesised aside) appears in the response, both normalized."""
    core = normalize(re.sub(r"\(.*?\)", "", gold))
    return bool(core) and f" {core} " in f" {normalize(response)} "


def token_f1(response: str, gold: str) -> float:
    """SQuAD-style token F1 between the normalized response and gold."""
    predicted, expected = normalize(response).split(), normalize(gold).split()
    common = sum((Counter(predicted) & Counter(expected)).values())
    if not common:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def answer_match(response: str, gold: float | str, answer_type: str, tolerance: float | None = None) -> bool:
    """The headline match: the gold quantity for numeric answers, every gold quantity for short ones
    that hold numbers, else the normalized gold text."""
    if answer_type == "numeric":
        return numeric_match(response, gold, tolerance)
    by_quantity = all_quantities_match(response, str(gold), tolerance)
    return by_quantity if by_quantity is not None else exact_match(response, str(gold))


_REPEATED_RUN = re.compile(r"\b((?:\S+\s+){7}\S+)\b.*\b\1\b", re.DOTALL)


def looped(response: str, flags: list[str], hit_max_tokens: bool) -> bool:
    """An answer that looped: the loop guard cut it, or it ran to max_tokens holding a repeated 8-word run."""
    return "repetition_stopped" in flags or (hit_max_tokens and bool(_REPEATED_RUN.search(response)))
