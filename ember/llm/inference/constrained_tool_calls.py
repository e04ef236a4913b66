"""Constrained decoding of tool calls: once a call opens, only a well-formed call can be written.

After the format's opening marker (``<tool_call>`` or ``<|tool_call|>``, from ``tool_calls``) a logits
processor allows only tokens that keep the output a prefix of

    {"name": "<one of the tools>", "arguments": {"<property>": <value>, ...}}<closing marker>

where the properties are the named tool's required ones (each once, all before the object may close;
optional ones keep their defaults), a string property takes a JSON string (closed after MAX_STRING_TOKENS
tokens), held to the property's JSON Schema ``pattern`` where it has one (the calculator's expression:
arithmetic only), and an integer or number property a JSON number (MAX_DIGITS digits at most); after the
closing marker only an end-of-turn token is allowed. ``force_open`` starts the output inside the opening
marker, so the turn is a call.

A character-level state machine runs over the tokens' text (precomputed once per tokenizer); a pattern
runs as a finite automaton (interegular) inside it. The set of
allowed tokens is computed once per machine state and cached with the grammar: inside a JSON string the
state stays the same from token to token, and tokens without a quote, backslash or control character are
allowed wholesale there.
"""

from __future__ import annotations

import json
from collections import defaultdict
from functools import lru_cache

import interegular
import torch

from ember.llm.inference.tool_calls import ToolCallFormat
from ember.llm.tokenizer.tokenizer import Tokenizer

State = tuple  # hashable machine states: ("free", tail), ("lit", text, i, next), ("name", prefix), ...
OFF: State = ("off",)  # the model opened a call in a way the machine cannot follow: no constraint
DONE: State = ("done",)
_NUMBER_TYPES = ("integer", "number")
_ESCAPES = set('"\\/bfnrt')
MAX_DIGITS = 6  # per number part: a model that keeps writing digits must end the number
MAX_STRING_TOKENS = 16  # then the string must close (a query is a few words)
_STRINGS = ("str", "pat")  # inside a JSON string: free, or held to a pattern


class ToolCallGrammar:
    """The machine for one tokenizer, tool list and format; build it with ``tool_call_grammar``."""

    def __init__(self, tokenizer: Tokenizer, tools: list[dict], fmt: ToolCallFormat) -> None:
        self.tools: dict[str, tuple[dict[str, str], frozenset[str]]] = {}
        self.patterns: dict[tuple[str, str], interegular.FSM] = {}  # (tool, property) → its pattern
        for tool in tools:
            function = tool.get("function", tool)
            schema = function.get("parameters") or {}
            required = frozenset(schema.get("required", []))
            # Only the required properties: a small model fills optional ones with copies of the others.
            properties = {k: v for k, v in schema.get("properties", {}).items() if k in required}
            types = {name: spec.get("type", "string") for name, spec in properties.items()}
            self.tools[function["name"]] = (types, required)
            for name, spec in properties.items():
                if types[name] == "string" and "pattern" in spec:
                    self.patterns[function["name"], name] = pattern_machine(spec["pattern"])
        if not self.tools:
            raise ValueError("constrained tool calls need at least one tool schema")
        self.format = fmt
        self.strings, specials = _token_strings(tokenizer)
        self.size = len(self.strings)
        self.eos = sorted(tokenizer.eos_ids)
        self.specials = sorted(specials)
        self.by_first: dict[str, list[int]] = defaultdict(list)
        self.plain_string = [False] * self.size  # stays inside a JSON string: no quote, backslash, control
        for token_id, text in enumerate(self.strings):
            if text and token_id not in specials:
                self.by_first[text[0]].append(token_id)
                self.plain_string[token_id] = not any(c in '"\\' or c < " " for c in text)
        self._masks: dict[State, torch.Tensor] = {}

    # --- states -------------------------------------------------------------------------------------
    def free(self) -> State:
        return ("free", "")

    def opened(self) -> State:
        return ("lit", '{"name": "', 0, ("name", ""))

    def forced(self) -> State:
        return ("lit", self.format.call_open, 0, self.opened())

    def advance(self, state: State, token_id: int) -> State:
        """The state after ``token_id``; OFF when the text leaves what the machine can follow."""
        text = self.strings[token_id] if 0 <= token_id < self.size else ""
        if state[0] == "off":
            return OFF
        if state[0] == "free":
            marker = self.format.call_open
            seen = state[1] + text
            at = seen.find(marker)
            if at < 0:
                return ("free", seen[-(len(marker) - 1) :])
            return self._run(self.opened(), seen[at + len(marker) :]) or OFF
        if state == DONE:
            return DONE
        return self._run(state, text) or OFF

    def mask(self, state: State) -> torch.Tensor | None:
        """The tokens allowed next (a bool tensor over the vocabulary), or None for no constraint."""
        if state[0] in ("free", "off"):
            return None
        if state not in self._masks:
            self._masks[state] = self._allowed(state)
        return self._masks[state]

    # --- the machine ---------------------------------------------------------------------------------
    def _allowed(self, state: State) -> torch.Tensor:
        allowed = [False] * self.size
        if state == DONE:
            for token_id in self.eos:
                allowed[token_id] = True
        elif state[0] == "str" and not state[3]:
            allowed = list(self.plain_string)
        for first, ids in self.by_first.items() if state != DONE else ():
            if self._step(state, first) is None:
                continue
            for token_id in ids:
                if not allowed[token_id] and self._run(state, self.strings[token_id]) is not None:
                    allowed[token_id] = True
        if state[0] == "lit":  # a marker may be one special token (Ember's native format)
            for token_id in self.specials:
                allowed[token_id] = self._run(state, self.strings[token_id]) is not None
        return torch.tensor(allowed, dtype=torch.bool)

    def closing(self, state: State) -> torch.Tensor:
        """Inside a string: the allowed tokens that end it (a string may not run on for ever)."""
        key = ("closing", state)
        if key not in self._masks:
            allowed = self.mask(state).clone()
            for token_id in allowed.nonzero().flatten().tolist():
                after = self._run(state, self.strings[token_id])
                allowed[token_id] = after is not None and after[0] not in _STRINGS
            self._masks[key] = allowed
        return self._masks[key]

    def _run(self, state: State | None, text: str) -> State | None:
        for char in text:
            if state is None:
                return None
            state = self._step(state, char)
        return state

    def _step(self, state: State, c: str) -> State | None:  # noqa: C901, PLR0911, PLR0912 - one table
        kind = state[0]
        if kind == "lit":
            _, text, i, then = state
            if c != text[i]:
                return None
            return ("lit", text, i + 1, then) if i + 1 < len(text) else then
        if kind == "name":
            prefix = state[1]
            if c == '"' and prefix in self.tools:
                return ("lit", ', "arguments": {', 0, ("obj", prefix, ()))
            grown = prefix + c
            return ("name", grown) if any(n.startswith(grown) for n in self.tools) else None
        if kind == "obj":  # after "{" or ", ": a key must follow ("{" alone may also close)
            _, tool, used = state
            if c == '"' and self._unused(tool, used):
                return ("key", tool, used, "")
            if c == "}" and not used and self._complete(tool, used):
                return self._close()
            return None
        if kind == "key":
            _, tool, used, prefix = state
            if c == '"' and prefix in self._unused(tool, used):
                return ("lit", ": ", 0, self._value(tool, (*used, prefix), prefix))
            grown = prefix + c
            return (
                ("key", tool, used, grown)
                if any(k.startswith(grown) for k in self._unused(tool, used))
                else None
            )
        if kind == "str":
            _, tool, used, escaped = state
            if escaped:
                return ("str", tool, used, False) if c in _ESCAPES else None
            if c == "\\":
                return ("str", tool, used, True)
            if c == '"':
                return ("after", tool, used)
            return None if c < " " else state
        if kind == "pat":
            _, tool, used, at = state
            machine = self.patterns[tool, used[-1]]
            if c == '"':
                return ("after", tool, used) if at in machine.finals else None
            if c == "\\" or c < " ":  # a pattern holds plain characters only
                return None
            following = machine.map[at].get(machine.alphabet[c])  # an unknown character: anything_else
            return (
                None if following is None or not machine.islive(following) else ("pat", tool, used, following)
            )
        if kind == "num":
            # part: "sign", "minus", "zero", "int", "dot", "frac" (JSON's rules), a "9" per digit so far
            _, tool, used, part = state
            if c in "0123456789" and part != "zero" and not part.endswith(MAX_DIGITS * "9"):
                if part in ("sign", "minus"):
                    return ("num", tool, used, "zero" if c == "0" else "int9")
                return ("num", tool, used, ("frac" if part.startswith(("dot", "frac")) else part) + "9")
            if c == "-" and part == "sign":
                return ("num", tool, used, "minus")
            if c == "." and part.startswith(("zero", "int")) and self._types(tool).get(used[-1]) == "number":
                return ("num", tool, used, "dot")
            if part.startswith(("zero", "int", "frac")):
                return self._step(("after", tool, used), c)
            return None
        if kind == "after":
            _, tool, used = state
            if c == "," and self._unused(tool, used):
                return ("lit", " ", 0, ("obj", tool, used))
            if c == "}" and self._complete(tool, used):
                return self._close()
            return None
        return None  # DONE: nothing may follow the call

    def _value(self, tool: str, used: tuple, key: str) -> State:
        if self._types(tool).get(key) in _NUMBER_TYPES:
            return ("num", tool, used, "sign")
        if (tool, key) in self.patterns:
            return ("lit", '"', 0, ("pat", tool, used, self.patterns[tool, key].initial))
        return ("lit", '"', 0, ("str", tool, used, False))

    def _close(self) -> State:
        return ("lit", "}" + self.format.call_close, 0, DONE)

    def _types(self, tool: str) -> dict[str, str]:
        return self.tools[tool][0]

    def _unused(self, tool: str, used: tuple) -> list[str]:
        return [k for k in self.tools[tool][0] if k not in used]

    def _complete(self, tool: str, used: tuple) -> bool:
        return self.tools[tool][1] <= set(used)


class ToolCallConstraint:
    """A per-request logits processor (``SamplingParams.logits_processor``) over a ToolCallGrammar."""

    def __init__(self, grammar: ToolCallGrammar, force_open: bool = False) -> None:
        self.grammar = grammar
        self.start = grammar.forced() if force_open else grammar.free()
        self._ids: list[int] = []
        self._state = self.start
        self._in_string = 0  # tokens spent inside the current JSON string

    def __call__(self, generated: list[int], logits: torch.Tensor) -> torch.Tensor:
        if generated[: len(self._ids)] != self._ids:  # another sequence: follow it from the start
            self._ids, self._state, self._in_string = [], self.start, 0
        for token_id in generated[len(self._ids) :]:
            before, self._state = self._state, self.grammar.advance(self._state, token_id)
            in_string = self._state[0] in _STRINGS and self._state[0] == before[0]
            self._in_string = self._in_string + 1 if in_string else 0
        self._ids = list(generated)
        mask = self.grammar.mask(self._state)
        if self._state[0] in _STRINGS and self._in_string >= MAX_STRING_TOKENS:
            closing = self.grammar.closing(self._state)
            mask = closing if closing.any() else mask  # a pattern may need more text before it can end
        if mask is None or not mask.any():
            return logits
        if mask.shape[-1] != logits.shape[-1]:  # the model's embedding rows may outnumber the vocabulary
            padded = torch.zeros(logits.shape[-1], dtype=torch.bool)
            size = min(mask.shape[-1], logits.shape[-1])
            padded[:size] = mask[:size]
            mask = padded
        return logits.masked_fill(~mask.to(logits.device), float("-inf"))


def tool_call_constraint(
    tokenizer: Tokenizer, tools: list[dict], fmt: ToolCallFormat, force_open: bool = False
) -> ToolCallConstraint:
    """A fresh processor for one request; the grammar (and its cached masks) is shared per tool list."""
    return ToolCallConstraint(_grammar(tokenizer, json.dumps(tools, sort_keys=True), fmt), force_open)


@lru_cache(maxsize=8)
def _grammar(tokenizer: Tokenizer, tools_json: str, fmt: ToolCallFormat) -> ToolCallGrammar:
    return ToolCallGrammar(tokenizer, json.loads(tools_json), fmt)


@lru_cache(maxsize=16)
def pattern_machine(pattern: str) -> interegular.FSM:
    """The automaton of a JSON Schema ``pattern`` over a whole string. JSON Schema patterns are unanchored:
    one without ``^`` / ``$`` may have any text before / after its match."""
    start, end = pattern.startswith("^"), pattern.endswith("$") and not pattern.endswith("\\$")
    body = pattern[int(start) : len(pattern) - int(end)]
    body = f"{'' if start else '.*'}({body}){'' if end else '.*'}"
    try:
        return interegular.parse_pattern(body).to_fsm().reduce()
    except Exception as exc:  # interegular raises bare Exceptions too (e.g. for "a{2,1}")
        raise ValueError(
            f"tool schema pattern {pattern!r} cannot be enforced: {exc or type(exc).__name__}"
        ) from exc


@lru_cache(maxsize=4)
def _token_strings(tokenizer: Tokenizer) -> tuple[list[str], frozenset[int]]:
    strings = [
        tokenizer.token_bytes(i).decode("utf-8", errors="replace") for i in range(tokenizer.vocab_size)
    ]
    return strings, frozenset(tokenizer.special_tokens.values())
