"""A backend whose tool calls follow a script; every turn the script leaves open goes to the real model.

Only the choice of tool calls is scripted (as the issue allows, to test the graph's control flow): the
script's text goes through the real model's tool-call parser, and the tools, retriever and storage are real.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ember.agents.backends import LocalBackend
from ember.llm.inference.chat import ChatDelta, ChatResult, Usage

Script = Callable[[list[dict]], str | None]  # messages so far → model output, or None for the real model


class ScriptedToolChooser:
    def __init__(self, real: LocalBackend, script: Script) -> None:
        self.real, self.script = real, script
        self.name, self.context_window = "scripted", real.context_window
        self.tool_call_format = real.tool_call_format
        self.scripted_turns = 0

    def chat(self, messages: list[dict], tools: list[dict] | None = None, **sampling) -> ChatResult:
        output = self.script(messages) if tools else None
        if output is None:
            return self.real.chat(messages, tools, **sampling)
        self.scripted_turns += 1
        parsed = self.tool_call_format.parse(output)
        prompt = sum(self.count_tokens(m["content"]) for m in messages)
        reason = "tool_calls" if parsed.tool_calls else "stop"
        usage = Usage(prompt, self.count_tokens(output))
        return ChatResult(parsed.text, parsed.tool_calls, parsed.malformed, usage, reason)

    def stream(
        self, messages: list[dict], tools: list[dict] | None = None, **sampling
    ) -> Iterator[ChatDelta]:
        yield ChatDelta("", self.chat(messages, tools, **sampling))

    def count_tokens(self, text: str) -> int:
        return self.real.count_tokens(text)

    def tool_call_constraint(self, tools: list[dict], force_open: bool) -> None:
        return None  # scripted turns need no constraint; the real model's turns run free here


class ScriptedModel(ScriptedToolChooser):
    """Every turn follows the script, with or without tools (for the planned fallback's control flow)."""

    def chat(self, messages: list[dict], tools: list[dict] | None = None, **sampling) -> ChatResult:
        return super().chat(messages, tools or [{}], **sampling)

    def stream(
        self, messages: list[dict], tools: list[dict] | None = None, **sampling
    ) -> Iterator[ChatDelta]:
        result = self.chat(messages, tools, **sampling)
        yield ChatDelta(result.text)
        yield ChatDelta("", result)


def tool_messages(messages: list[dict]) -> list[str]:
    return [m["content"] for m in messages if m["role"] == "tool"]
