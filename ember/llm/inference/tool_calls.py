"""Tool calls in generated text: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``.

This is SmolLM2-Instruct's format (and Hermes/Qwen's), and Ember's own for models without one.
Parsing never raises: anything that is not a well-formed call is returned as malformed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

OPEN, CLOSE = "<tool_call>", "</tool_call>"
_BLOCK = re.compile(re.escape(OPEN) + r"(.*?)(?:" + re.escape(CLOSE) + r"|$)", re.DOTALL)


@dataclass
class ToolCall:
    name: str
    arguments: dict
    id: str = ""


@dataclass
class MalformedToolCall:
    raw: str
    error: str


@dataclass
class ParsedOutput:
    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    malformed: list[MalformedToolCall] = field(default_factory=list)


def _parse_call(raw: str, closed: bool) -> ToolCall | MalformedToolCall:
    if not closed:
        return MalformedToolCall(raw, f"{OPEN} without a closing {CLOSE}")
    try:
        payload = json.loads(raw)
    except json.JSONDecodeError as exc:
        return MalformedToolCall(raw, f"not valid JSON: {exc}")
    if not isinstance(payload, dict) or not isinstance(payload.get("name"), str) or not payload["name"]:
        return MalformedToolCall(raw, 'expected a JSON object with a string "name"')
    arguments = payload.get("arguments", payload.get("parameters", {}))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError as exc:
            return MalformedToolCall(raw, f'"arguments" is a string that is not valid JSON: {exc}')
    if not isinstance(arguments, dict):
        return MalformedToolCall(raw, '"arguments" must be a JSON object')
    return ToolCall(payload["name"], arguments)


def parse_tool_calls(text: str) -> ParsedOutput:
    """Split generated text into plain text, well-formed calls and malformed ones."""
    parsed = ParsedOutput(text="")
    pieces, cursor = [], 0
    for number, match in enumerate(_BLOCK.finditer(text)):
        pieces.append(text[cursor : match.start()])
        cursor = match.end()
        closed = match.group(0).endswith(CLOSE)
        call = _parse_call(match.group(1).strip(), closed)
        if isinstance(call, ToolCall):
            call.id = f"call_{number}"
            parsed.tool_calls.append(call)
        else:
            parsed.malformed.append(call)
    pieces.append(text[cursor:])
    parsed.text = "".join(pieces).strip()
    return parsed


def tool_system_prompt(tools: list[dict]) -> str:
    """Ember's instructions for models whose chat template does not render tool schemas."""
    schemas = "\n".join(json.dumps(tool.get("function", tool), ensure_ascii=False) for tool in tools)
    return (
        "You can call these tools. Their JSON schemas:\n<tools>\n"
        f"{schemas}\n</tools>\n"
        "To call a tool, reply with one line per call, exactly like:\n"
        f'{OPEN}{{"name": "tool_name", "arguments": {{"arg": "value"}}}}{CLOSE}'
    )


def with_tool_instructions(messages: list[dict], tools: list[dict]) -> list[dict]:
    """``messages`` with the tool instructions added to (or placed as) the system message."""
    instructions = tool_system_prompt(tools)
    if messages and messages[0].get("role") == "system":
        first = {**messages[0], "content": f"{messages[0]['content']}\n\n{instructions}"}
        return [first, *messages[1:]]
    return [{"role": "system", "content": instructions}, *messages]
