"""The agent's tools. Each gets its data access as a callable from the caller (the platform), so no tool
can reach the file system, the network or a shell: only search, read, list and arithmetic exist.

Every passage a tool shows gets a number that stays fixed for the whole run, so the final answer can cite
passages from any step as [n] and the citations can be verified against what the model actually saw.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ember.agents.calculator import EXPRESSION_PATTERN, CalculatorError, evaluate
from ember.agents.prompts import render_passage
from ember.retrieval.types import Hit

SearchFn = Callable[[str, Sequence[str], int], list[Hit]]  # (query, collections, k) → hits
ReadFn = Callable[[str, int, int], list[Hit]]  # ("chunk" | "document", id, around) → chunks in order
ListFn = Callable[[], list[dict]]  # → [{"name", "description", "documents"}]

MAX_K = 10
MAX_AROUND = 3
MAX_ID = 2**63 - 1  # the largest SQL integer key: no chunk or document has a larger id
_TARGET = re.compile(r"(chunk|document):([0-9]+)")  # ASCII digits only: int() refuses "²"

SCHEMAS = [
    {
        "type": "function",
        "function": {
            "name": "search",
            "description": "Search the documents. Returns numbered passages.",
            "parameters": {
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "what to look for"},
                    "collection": {"type": "string", "description": "collection name (optional)"},
                    "k": {"type": "integer", "description": f"number of passages, 1-{MAX_K}"},
                },
                "required": ["query"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "read",
            "description": "Read a chunk with its neighbours, or the start of a document. "
            "id is 'chunk:<n>' or 'document:<n>'.",
            "parameters": {
                "type": "object",
                "properties": {
                    "id": {"type": "string", "description": "chunk:<n> or document:<n>"},
                    "around": {
                        "type": "integer",
                        "description": f"neighbouring chunks each side, 0-{MAX_AROUND}",
                    },
                },
                "required": ["id"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "calculator",
            "description": "Evaluate an arithmetic expression, e.g. 12 * 4.5e6 or sqrt(2) / 3.",
            "parameters": {
                "type": "object",
                "properties": {"expression": {"type": "string", "pattern": EXPRESSION_PATTERN}},
                "required": ["expression"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "list_collections",
            "description": "List the document collections.",
            "parameters": {"type": "object", "properties": {}},
        },
    },
]


class ToolError(ValueError):
    """Bad arguments or an unknown tool; the message goes back to the model as the observation."""


@dataclass
class Toolbox:
    search_fn: SearchFn
    read_fn: ReadFn
    list_fn: ListFn
    collections: list[str]  # searched when the model names none
    passages: list[Hit] = field(default_factory=list)  # passage n is passages[n - 1]

    def call(self, name: str, arguments: dict) -> str:
        handlers = {
            "search": self._search,
            "read": self._read,
            "calculator": self._calculator,
            "list_collections": self._list,
        }
        if name not in handlers:
            raise ToolError(f"unknown tool {name!r}; the tools are {', '.join(handlers)}")
        if not isinstance(arguments, dict):
            raise ToolError(f"{name}: arguments must be a JSON object")
        return handlers[name](arguments)

    def _number(self, hits: list[Hit]) -> str:
        rendered = []
        for hit in hits:
            known = next((i for i, p in enumerate(self.passages) if p.chunk_id == hit.chunk_id), None)
            if known is None:
                self.passages.append(hit)
                known = len(self.passages) - 1
            rendered.append(render_passage(known + 1, hit) + f"\n(id: chunk:{hit.chunk_id})")
        return "\n".join(rendered) if rendered else "no passages found"

    def _search(self, arguments: dict) -> str:
        query = arguments.get("query")
        if not isinstance(query, str) or not query.strip():
            raise ToolError("search: 'query' must be a non-empty string")
        k = _integer(arguments.get("k", 4), "search", "k", 1, MAX_K)
        collection = arguments.get("collection")
        collections = [collection] if isinstance(collection, str) and collection else self.collections
        return self._number(self.search_fn(query, collections, k))

    def _read(self, arguments: dict) -> str:
        target = str(arguments.get("id", ""))
        matched = _TARGET.fullmatch(target)
        if matched is None:
            raise ToolError(f"read: id must look like 'chunk:12' or 'document:3', got {target!r}")
        kind, digits = matched.groups()
        significant = digits.lstrip("0") or "0"  # int() refuses over 4,300 digits; no id has 20
        if len(significant) > len(str(MAX_ID)) or int(significant) > MAX_ID:
            raise ToolError(f"read: {kind} {significant} does not exist")
        around = _integer(arguments.get("around", 1), "read", "around", 0, MAX_AROUND)
        return self._number(self.read_fn(kind, int(significant), around))

    def _calculator(self, arguments: dict) -> str:
        try:
            return str(evaluate(arguments.get("expression", "")))
        except CalculatorError as exc:
            raise ToolError(f"calculator: {exc}") from exc

    def _list(self, arguments: dict) -> str:
        return json.dumps(self.list_fn())


def _integer(value: object, tool: str, name: str, low: int, high: int) -> int:
    try:
        number = int(value)  # models often send numbers as strings
    except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: JSON's Infinity
        raise ToolError(f"{tool}: '{name}' must be an integer, got {value!r}") from exc
    return max(low, min(high, number))
