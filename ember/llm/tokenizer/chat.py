"""Chat rendering to (ids, loss_mask): Ember's own template, and a model's jinja template rendered the way
transformers' ``apply_chat_template`` does (sandboxed, trim_blocks/lstrip_blocks, raise_exception, tojson).

The loss mask is 1 on the tokens an assistant turn produces (its text, tool calls and end marker) and 0 on
everything else: system, user and tool-result tokens, and the header that opens an assistant turn.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from typing import Any, Protocol

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

BOS, EOS, PAD = "<|bos|>", "<|eos|>", "<|pad|>"
ROLE_MARKERS = {role: f"<|{role}|>" for role in ("system", "user", "assistant", "tool")}
TOOL_CALL, TOOL_CALL_END = "<|tool_call|>", "<|tool_call_end|>"
TOOL_RESULT, TOOL_RESULT_END = "<|tool_result|>", "<|tool_result_end|>"
DEFAULT_SPECIAL_TOKENS = [
    BOS,
    EOS,
    PAD,
    *ROLE_MARKERS.values(),
    TOOL_CALL,
    TOOL_CALL_END,
    TOOL_RESULT,
    TOOL_RESULT_END,
]


class ChatTokenizer(Protocol):
    """What rendering needs of a tokenizer (``Tokenizer`` is one; naming the class here would be a cycle)."""

    special_tokens: dict[str, int]
    chat_template: str | None

    def encode(self, text: str, allowed_special: set[str] | str = ()) -> list[int]: ...

    def token_bytes(self, token_id: int) -> bytes: ...

    def template_variables(self) -> dict[str, Any]: ...


# Private-use characters that fence special-token text found inside messages, so it stays plain text.
_FENCE_OPEN, _FENCE_CLOSE = "\U000f0001", "\U000f0002"
_FENCE_STAND_IN = "\ufffd"  # what a fence character inside a message becomes: it must not switch fencing


def _check_messages(messages: list[dict]) -> None:
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLE_MARKERS:
            raise ValueError(f"message {index} needs a role among {sorted(ROLE_MARKERS)}, got {message!r}")


def tool_call_json(call: dict) -> str:
    """The JSON body of one tool call, ``{"name": ..., "arguments": {...}}``, from an OpenAI-shaped call
    (``{"function": {"name", "arguments"}}``, arguments as an object or a JSON string) or a bare one."""
    function = call.get("function", call)
    arguments = function.get("arguments", {})
    if isinstance(arguments, str):
        arguments = json.loads(arguments) if arguments.strip() else {}
    return json.dumps({"name": function["name"], "arguments": arguments}, ensure_ascii=False)


def render_native(
    tok: ChatTokenizer, messages: list[dict], tools: list[dict] | None, add_generation_prompt: bool
) -> tuple[list[int], list[int]]:
    """Ember's template: <|bos|>, then per message a role marker, its text and <|eos|>.

    Tool definitions follow the system turn as a <|tool|> turn (one JSON schema per line); assistant tool
    calls are <|tool_call|>{"name", "arguments"}<|tool_call_end|>; a tool message is
    <|tool_result|>text<|tool_result_end|>.
    """
    _check_messages(messages)
    missing = [s for s in DEFAULT_SPECIAL_TOKENS if s not in tok.special_tokens]
    if missing:
        raise ValueError(
            f"Ember's chat template needs the special tokens {missing}, which this tokenizer lacks"
        )
    special = tok.special_tokens
    ids: list[int] = [special[BOS]]
    mask: list[int] = [0]

    def add(new_ids: list[int], trained: int) -> None:
        ids.extend(new_ids)
        mask.extend([trained] * len(new_ids))

    def turn(role: str, text: str) -> None:
        add([special[ROLE_MARKERS[role]]], 0)
        add(tok.encode(text), 0)
        add([special[EOS]], 0)

    rest = messages
    if messages and messages[0]["role"] == "system":
        turn("system", messages[0].get("content") or "")
        rest = messages[1:]
    if tools:
        turn("tool", "\n".join(json.dumps(tool, ensure_ascii=False) for tool in tools))
    for message in rest:
        role = message["role"]
        content = message.get("content") or ""
        if role == "assistant":
            add([special[ROLE_MARKERS["assistant"]]], 0)
            add(tok.encode(content), 1)
            for call in message.get("tool_calls") or []:
                add([special[TOOL_CALL]], 1)
                add(tok.encode(tool_call_json(call)), 1)
                add([special[TOOL_CALL_END]], 1)
            add([special[EOS]], 1)
        elif role == "tool":
            add([special[TOOL_RESULT]], 0)
            add(tok.encode(content), 0)
            add([special[TOOL_RESULT_END]], 0)
        else:
            turn(role, content)
    if add_generation_prompt:
        add([special[ROLE_MARKERS["assistant"]]], 0)
    return ids, mask


def _raise_exception(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


def _tojson(
    value: Any, ensure_ascii: bool = False, indent: int | None = None, separators=None, sort_keys=False
):
    # jinja's own tojson escapes HTML characters; chat templates expect plain JSON, as transformers gives
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


@cache
def _compile(template: str) -> jinja2.Template:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(template)


def render_template_text(
    template: str,
    messages: list[dict],
    tools: list[dict] | None = None,
    add_generation_prompt: bool = True,
    **variables: Any,
) -> str:
    """The text a jinja chat template renders; ``variables`` carries bos_token, eos_token and the like."""
    return _compile(template).render(
        messages=messages,
        tools=tools,
        documents=None,
        add_generation_prompt=add_generation_prompt,
        **variables,
    )


def _fence_specials(value: Any, specials: list[str]) -> Any:
    """Copy of ``value`` where every special-token string inside text is fenced as plain text, once the
    text's own fence characters are replaced (else one would fence off the template's later specials)."""
    if isinstance(value, str):
        value = value.replace(_FENCE_OPEN, _FENCE_STAND_IN).replace(_FENCE_CLOSE, _FENCE_STAND_IN)
        for special in specials:
            if special in value:
                value = value.replace(special, f"{_FENCE_OPEN}{special}{_FENCE_CLOSE}")
        return value
    if isinstance(value, dict):
        return {
            _fence_specials(key, specials): _fence_specials(item, specials) for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_fence_specials(item, specials) for item in value]
    return value


def _encode_fenced(tok: ChatTokenizer, text: str) -> list[int]:
    """Template text may hold special tokens; fenced stretches (from messages) are plain text only."""
    if _FENCE_OPEN not in text:
        return tok.encode(text, allowed_special="all")
    ids: list[int] = []
    for index, part in enumerate(text.split(_FENCE_OPEN)):
        if index == 0:
            ids.extend(tok.encode(part, allowed_special="all"))
            continue
        fenced, _, after = part.partition(_FENCE_CLOSE)
        ids.extend(tok.encode(fenced))
        ids.extend(tok.encode(after, allowed_special="all"))
    return ids


def render_jinja(
    tok: ChatTokenizer, messages: list[dict], tools: list[dict] | None, add_generation_prompt: bool
) -> tuple[list[int], list[int]]:
    """Render with the model's template; assistant spans come from rendering growing prefixes of the chat.

    An assistant turn spans from the end of ``messages[:i]`` rendered with a generation prompt to the end
    of ``messages[:i + 1]`` rendered without one, which holds for templates that render turn by turn.
    """
    _check_messages(messages)
    specials = sorted(tok.special_tokens, key=len, reverse=True)
    fenced = _fence_specials(messages, specials)
    fenced_tools = _fence_specials(tools, specials) if tools else None
    variables = tok.template_variables()

    def render(upto: int, generation: bool) -> str:
        return render_template_text(tok.chat_template, fenced[:upto], fenced_tools, generation, **variables)

    text = render(len(fenced), add_generation_prompt)
    spans: list[tuple[int, int]] = []
    for index, message in enumerate(fenced):
        if message["role"] != "assistant":
            continue
        opened, closed = render(index, True), render(index + 1, False)
        start, end = len(opened), len(closed)
        if not text.startswith(closed) or not closed.startswith(opened):
            raise ValueError("the chat template does not render turn by turn; cannot locate assistant tokens")
        spans.append((start, end))

    ids = _encode_fenced(tok, text)
    # A token is trained on when its first byte lies in an assistant span (byte offsets without fences).
    byte_spans = [(_plain_bytes(text, start), _plain_bytes(text, end)) for start, end in spans]
    mask, position = [], 0
    for token_id in ids:
        mask.append(int(any(start <= position < end for start, end in byte_spans)))
        position += len(tok.token_bytes(token_id))
    return ids, mask


def _plain_bytes(text: str, char_index: int) -> int:
    """Byte offset in the unfenced UTF-8 text of ``text[:char_index]``."""
    head = text[:char_index].replace(_FENCE_OPEN, "").replace(_FENCE_CLOSE, "")
    return len(head.encode("utf-8"))
