"""The one tool-call format: the markup of calls and results, tool prompts, parsing and stream hiding.

Two formats exist, and ``tool_call_format(tokenizer)`` picks the one a model reads and writes:

- ``HERMES``: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``, results in
  ``<tool_response>...</tool_response>``: SmolLM2-Instruct's, Hermes' and Qwen's; used for every model
  that brings its own jinja chat template.
- ``NATIVE``: Ember's own chat template (``ember.llm.tokenizer.chat.render_native``) writes calls as
  ``<|tool_call|>{...}<|tool_call_end|>`` and results as ``<|tool_result|>...<|tool_result_end|>``.
  These are special tokens; decoding keeps their text, so the parser sees them in generated text.

Parsing never raises: anything that is not a well-formed call is returned as malformed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache

from ember.llm.tokenizer.chat import (
    TOOL_CALL,
    TOOL_CALL_END,
    TOOL_RESULT,
    TOOL_RESULT_END,
    tool_call_json,
)
from ember.llm.tokenizer.tokenizer import Tokenizer


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


@dataclass(frozen=True)
class ToolCallFormat:
    """The markup that wraps one call's JSON and one tool result's text."""

    name: str
    call_open: str
    call_close: str
    result_open: str
    result_close: str

    def render_calls(self, calls: list[dict]) -> str:
        """Calls (OpenAI-shaped, or ``{"name", "arguments"}``) as the markup a model writes."""
        return "".join(f"{self.call_open}{tool_call_json(call)}{self.call_close}" for call in calls)

    def render_result(self, content: str) -> str:
        return f"{self.result_open}{content}{self.result_close}"

    def inline_history(self, messages: list[dict]) -> list[dict]:
        """``messages`` for templates without a ``tool_calls`` field: earlier calls become markup in the
        assistant's text and tool results are wrapped in the result markup, as the model would see them."""
        out = []
        for message in messages:
            if message.get("tool_calls"):
                content = (message.get("content") or "") + self.render_calls(message["tool_calls"])
                out.append({"role": "assistant", "content": content})
            elif message.get("role") == "tool":
                out.append({**message, "content": self.render_result(message.get("content") or "")})
            else:
                out.append(message)
        return out

    def instructions(self, tools: list[dict]) -> str:
        """Ember's tool instructions, for chat templates that do not render tool schemas themselves."""
        schemas = "\n".join(json.dumps(tool.get("function", tool), ensure_ascii=False) for tool in tools)
        example = self.render_calls([{"name": "tool_name", "arguments": {"arg": "value"}}])
        return (
            "You can call these tools. Their JSON schemas:\n<tools>\n"
            f"{schemas}\n</tools>\n"
            f"To call a tool, reply with one line per call, exactly like:\n{example}"
        )

    def with_tool_instructions(self, messages: list[dict], tools: list[dict]) -> list[dict]:
        """``messages`` with the tool instructions added to (or placed as) the system message."""
        instructions = self.instructions(tools)
        if messages and messages[0].get("role") == "system":
            first = {**messages[0], "content": f"{messages[0]['content']}\n\n{instructions}"}
            return [first, *messages[1:]]
        return [{"role": "system", "content": instructions}, *messages]

    def parse(self, text: str) -> ParsedOutput:
        """Split generated text into plain text, well-formed calls and malformed ones."""
        parsed = ParsedOutput(text="")
        pieces, cursor = [], 0
        for number, match in enumerate(_call_blocks(self.call_open, self.call_close).finditer(text)):
            pieces.append(text[cursor : match.start()])
            cursor = match.end()
            call = self._parse_call(match.group(1).strip(), closed=match.group(0).endswith(self.call_close))
            if isinstance(call, ToolCall):
                call.id = f"call_{number}"
                parsed.tool_calls.append(call)
            else:
                parsed.malformed.append(call)
        pieces.append(text[cursor:])
        parsed.text = "".join(pieces).strip()
        return parsed

    def _parse_call(self, raw: str, closed: bool) -> ToolCall | MalformedToolCall:
        if not closed:
            return MalformedToolCall(raw, f"{self.call_open} without a closing {self.call_close}")
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


HERMES = ToolCallFormat("hermes", "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>")
NATIVE = ToolCallFormat("ember", TOOL_CALL, TOOL_CALL_END, TOOL_RESULT, TOOL_RESULT_END)


def tool_call_format(tokenizer: Tokenizer) -> ToolCallFormat:
    """NATIVE when the tokenizer renders chats with Ember's own template (it has no jinja chat template,
    as ``Tokenizer.render_chat`` decides), else HERMES."""
    return HERMES if tokenizer.chat_template else NATIVE


def fit_to_template(
    tokenizer: Tokenizer, messages: list[dict], tools: list[dict] | None
) -> tuple[list[dict], list[dict] | None]:
    """``messages`` and ``tools`` as the tokenizer's chat template can show them to the model.

    A template that ignores the ``tool_calls`` field (SmolLM2's does) gets earlier calls written into the
    assistant's text as markup; one that ignores tool schemas gets the format's tool instructions in the
    system message instead of ``tools``.
    """
    fmt, render = tool_call_format(tokenizer), tokenizer.render_chat
    if any(m.get("tool_calls") for m in messages):
        bare = [{k: v for k, v in m.items() if k != "tool_calls"} for m in messages]
        if render(messages)[0] == render(bare)[0]:
            messages = fmt.inline_history(messages)
    if tools and render(messages, tools)[0] == render(messages)[0]:
        return fmt.with_tool_instructions(messages, tools), None
    return messages, tools


@cache
def _call_blocks(call_open: str, call_close: str) -> re.Pattern:
    # A call runs from its opening marker to the first closing one, or to the end of the text if unclosed.
    return re.compile(re.escape(call_open) + r"(.*?)(?:" + re.escape(call_close) + r"|\Z)", re.DOTALL)


class ToolMarkupFilter:
    """Streamed text in, visible text out: call markup stays hidden even when split across chunks.

    The pieces ``push`` and ``finish`` return join to exactly ``fmt.parse(whole_text).text``: whitespace
    at either end is dropped too, so trailing whitespace is held until visible text follows it.
    """

    def __init__(self, fmt: ToolCallFormat) -> None:
        self.format = fmt
        self._pending = ""  # text that may still begin (or, inside a call, end) a marker
        self._in_call = False
        self._started = False  # visible text has begun: leading whitespace is behind us
        self._space = ""  # whitespace held back: dropped if nothing visible follows

    def push(self, chunk: str) -> str:
        self._pending += chunk
        visible = []
        while True:
            marker = self.format.call_close if self._in_call else self.format.call_open
            at = self._pending.find(marker)
            if at < 0:
                cut = len(self._pending) - _partial_marker(self._pending, marker)
                if not self._in_call:
                    visible.append(self._pending[:cut])
                self._pending = self._pending[cut:]
                break
            if not self._in_call:
                visible.append(self._pending[:at])
            self._pending = self._pending[at + len(marker) :]
            self._in_call = not self._in_call
        return self._trim("".join(visible))

    def finish(self) -> str:
        """What is still visible at the end of the stream (a marker's start that never completed)."""
        rest = "" if self._in_call else self._pending
        self._pending = ""
        return self._trim(rest)

    def _trim(self, text: str) -> str:
        if not self._started:
            text = text.lstrip()
            if not text:
                return ""
            self._started = True
        text = self._space + text
        visible = text.rstrip()
        self._space = text[len(visible) :]
        return visible


def _partial_marker(text: str, marker: str) -> int:
    """Length of the longest end of ``text`` that is a proper beginning of ``marker``."""
    for size in range(min(len(marker) - 1, len(text)), 0, -1):
        if text.endswith(marker[:size]):
            return size
    return 0
