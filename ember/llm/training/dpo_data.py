"""DPO data: TRL-format preference pairs (``prompt``, ``chosen``, ``rejected``), plain text or conversations.

Plain: three strings; the completion is followed by the end-of-sequence token, as TRL does. Conversational:
``prompt`` a list of messages, ``chosen`` and ``rejected`` lists of assistant messages; only the completion's
assistant tokens are trained on. Optional ``ref_chosen_logps`` / ``ref_rejected_logps`` carry precomputed
reference log-probs (TRL's names).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ember.llm.tokenizer import Tokenizer
from ember.llm.training.jsonl import DataError, check_messages, read_jsonl
from ember.llm.training.sft_data import Example, render_conversation


@dataclass
class Pair:
    chosen: Example
    rejected: Example
    line: int
    ref_chosen: float | None = None
    ref_rejected: float | None = None


def _plain(tokenizer: Tokenizer, prompt: str, completion: str) -> Example:
    head = ([tokenizer.bos_id] if tokenizer.bos_id is not None else []) + tokenizer.encode(prompt)
    tail = tokenizer.encode(completion) + ([tokenizer.eos_id] if tokenizer.eos_id is not None else [])
    return Example(head + tail, [0] * len(head) + [1] * len(tail))


def _conversational(tokenizer: Tokenizer, prompt: list[dict], completion: list[dict], tools) -> Example:
    head, _ = render_conversation(tokenizer, prompt, tools, generation=True)
    ids, mask = render_conversation(tokenizer, prompt + completion, tools)
    if ids[: len(head)] != head:
        raise ValueError("the chat template renders the prompt differently once a reply follows it")
    return Example(ids, [0] * len(head) + mask[len(head) :])


def load_pairs(path: Path, tokenizer: Tokenizer, max_len: int) -> list[Pair]:
    """Every preference pair of the JSONL at ``path``, each side cut to ``max_len`` tokens."""
    path = Path(path)
    pairs = []
    for line, row in read_jsonl(path):
        missing = [key for key in ("prompt", "chosen", "rejected") if key not in row]
        if missing:
            raise DataError(path, line, f"missing {missing}: a pair needs prompt, chosen and rejected")
        prompt, chosen, rejected = row["prompt"], row["chosen"], row["rejected"]
        if chosen == rejected:
            raise DataError(path, line, "chosen and rejected are identical: the pair prefers nothing")
        if all(isinstance(value, str) for value in (prompt, chosen, rejected)):
            sides = [_plain(tokenizer, prompt, chosen), _plain(tokenizer, prompt, rejected)]
        else:
            prompt = check_messages(path, line, prompt, "prompt")
            for field in ("chosen", "rejected"):
                turns = check_messages(path, line, row[field], field)
                if any(m["role"] != "assistant" for m in turns):
                    raise DataError(path, line, f"{field!r} must hold assistant messages only")
            sides = [
                _conversational(tokenizer, prompt, row[f], row.get("tools")) for f in ("chosen", "rejected")
            ]
        for side, field in zip(sides, ("chosen", "rejected"), strict=True):
            side.ids, side.mask, side.line = side.ids[:max_len], side.mask[:max_len], line
            if not any(side.mask[1:]):
                raise DataError(path, line, f"{field!r} has no token to score within {max_len} tokens")
        refs = [row.get("ref_chosen_logps"), row.get("ref_rejected_logps")]
        if (refs[0] is None) != (refs[1] is None):
            raise DataError(path, line, "give both ref_chosen_logps and ref_rejected_logps, or neither")
        pairs.append(Pair(*sides, line, *refs))
    if not pairs:
        raise DataError(path, 0, "no preference pairs")
    return pairs
