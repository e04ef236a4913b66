"""SFT data: TRL-format conversations (``messages``, optional ``tools``) rendered to (ids, loss mask), packed.
TRL's language-modeling rows (``text``) train on every token: replayed plain text that keeps a tuned model's
general text distribution where it was.

The chat renderer marks the supervised tokens: an assistant turn's text, its tool calls and its end marker.
Tool calls and results are written as the model reads them at inference (``fit_to_template``), so a
model trained here sees the same markup the agents give it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ember.llm.inference.tool_calls import fit_to_template
from ember.llm.tokenizer import Tokenizer
from ember.llm.training.jsonl import DataError, check_messages, read_jsonl


@dataclass
class Example:
    ids: list[int]
    mask: list[int]  # 1 where the token is trained on
    line: int = 0


def render_conversation(
    tokenizer: Tokenizer, messages: list[dict], tools: list[dict] | None = None, generation: bool = False
) -> tuple[list[int], list[int]]:
    """(ids, loss mask) of a conversation as the model sees it at inference."""
    messages, tools = fit_to_template(tokenizer, messages, tools)
    return tokenizer.render_chat(messages, tools=tools, add_generation_prompt=generation)


def load_sft(path: Path, tokenizer: Tokenizer, max_len: int) -> list[Example]:
    """Every conversation of the JSONL at ``path``, cut to ``max_len`` tokens."""
    path = Path(path)
    examples = []
    for line, row in read_jsonl(path):
        if "messages" not in row and "text" in row:
            examples.append(_text_example(path, line, row["text"], tokenizer, max_len))
            continue
        if "messages" not in row:
            raise DataError(path, line, "a row needs 'messages' (a conversation) or 'text' (plain text)")
        messages = check_messages(path, line, row.get("messages"), "messages")
        if not any(m["role"] == "assistant" for m in messages):
            raise DataError(path, line, "the conversation has no assistant turn: nothing to learn from")
        empty = [
            i
            for i, m in enumerate(messages)
            if m["role"] == "assistant" and not (m.get("content") or m.get("tool_calls"))
        ]
        if empty:
            raise DataError(
                path, line, f"messages{empty} are empty assistant turns (no content, no tool calls)"
            )
        tools = row.get("tools")
        if tools is not None and not isinstance(tools, list):
            raise DataError(path, line, "'tools' must be a list of tool schemas")
        ids, mask = render_conversation(tokenizer, messages, tools)
        ids, mask = ids[:max_len], mask[:max_len]
        if not any(mask[1:]):
            raise DataError(
                path, line, f"no supervised token in the first {max_len} tokens (empty assistant turns?)"
            )
        examples.append(Example(ids, mask, line))
    if not examples:
        raise DataError(path, 0, "no conversations")
    return examples


def _text_example(path: Path, line: int, text: object, tokenizer: Tokenizer, max_len: int) -> Example:
    if not isinstance(text, str) or not text.strip():
        raise DataError(path, line, "'text' must be a non-empty string")
    ids = ([tokenizer.bos_id] if tokenizer.bos_id is not None else []) + tokenizer.encode(text)
    ids = ids[:max_len]
    if len(ids) < 2:
        raise DataError(path, line, "'text' is too short to train on: it needs at least two tokens")
    return Example(ids, [0] + [1] * (len(ids) - 1), line)  # the first token has nothing to predict it


def pack(examples: list[Example], seq_len: int, pad_id: int) -> list[Example]:
    """Rows of ``seq_len`` tokens holding whole examples, first-fit by decreasing length, padded with
    ``pad_id`` (mask 0). Positions run on across examples in a row, as in nanochat's SFT."""
    rows: list[Example] = []
    for example in sorted(examples, key=lambda e: len(e.ids), reverse=True):
        row = next((r for r in rows if len(r.ids) + len(example.ids) <= seq_len), None)
        if row is None:
            rows.append(Example(list(example.ids), list(example.mask), example.line))
        else:
            row.ids.extend(example.ids)
            row.mask.extend(example.mask)
    for row in rows:
        padding = seq_len - len(row.ids)
        row.ids.extend([pad_id] * padding)
        row.mask.extend([0] * padding)
    return rows
