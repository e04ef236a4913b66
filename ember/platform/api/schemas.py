"""Request bodies. Responses are built as plain dicts in OpenAI's exact shape (see chat_format)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

COLLECTION_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
# The request examples in the OpenAPI schema; docs/api.md shows the same bodies (tests/api/test_api_docs.py).
CHAT_EXAMPLE = {
    "model": "smollm2-135m-instruct",
    "messages": [{"role": "user", "content": "How does the with statement work?"}],
    "max_tokens": 120,
    "ember": {"collection": "sample", "agent": False},
}
EMBEDDING_EXAMPLE = {"model": "all-MiniLM-L6-v2", "input": ["hybrid search", "BM25 and FAISS"]}
SEARCH_EXAMPLE = {"query": "how do decorators work", "collections": ["sample"], "k": 5, "mode": "hybrid"}


class ContentPart(BaseModel):
    type: Literal["text"] = Field(description="Only text parts are accepted.")
    text: str = Field(description="The part's text.")


class FunctionCall(BaseModel):
    name: str = Field(min_length=1, description="The function that was called.")
    arguments: str = Field(default="{}", description="Its arguments: a JSON object, encoded as a string.")


class ToolCallIn(BaseModel):
    id: str = Field(default="", description="The call's id, which the `tool` message answering it repeats.")
    type: Literal["function"] = Field(default="function", description="Always `function`.")
    function: FunctionCall = Field(description="The function called and its arguments.")


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"] = Field(
        description="Who speaks; `developer` is treated as `system`."
    )
    content: str | list[ContentPart] | None = Field(
        default=None,
        description="The text, or a list of text parts; null on an assistant turn with tool calls.",
    )
    name: str | None = Field(default=None, description="Accepted for compatibility; not used.")
    tool_calls: list[ToolCallIn] | None = Field(
        default=None, description="On an `assistant` message: the tool calls it made."
    )
    tool_call_id: str | None = Field(default=None, description="On a `tool` message: the call it answers.")

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class FunctionDef(BaseModel):
    name: str = Field(min_length=1, max_length=64, description="The function's name.")
    description: str = Field(default="", description="What it does, shown to the model.")
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="A JSON Schema object describing its arguments."
    )


class Tool(BaseModel):
    type: Literal["function"] = Field(description="Always `function`.")
    function: FunctionDef = Field(description="A function the model may call.")


class StreamOptions(BaseModel):
    include_usage: bool = Field(
        default=False, description="Send one last chunk with the token usage and an empty `choices` list."
    )


class EmberOptions(BaseModel):
    """The ``ember`` extension (send with the SDK's ``extra_body``): answer from a collection."""

    collection: str = Field(min_length=1, description="Answer from this collection, with citations.")
    agent: bool = Field(
        default=False, description="Let the tool-calling agent search and read, instead of one retrieval."
    )
    conversation_id: int | None = Field(
        default=None,
        ge=1,
        le=2**63 - 1,
        description="Continue this stored conversation (follow-ups are rewritten to stand alone); "
        "without it a new conversation is started. Its id comes back in `ember.conversation_id`.",
    )
    show_steps: bool = Field(
        default=False, description="Stream the agent's steps (searches, reads) as they happen."
    )


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [CHAT_EXAMPLE]})

    model: str = Field(min_length=1, description="The served model's id, as `GET /v1/models` lists it.")
    messages: list[ChatMessage] = Field(min_length=1, description="The conversation so far, oldest first.")
    tools: list[Tool] | None = Field(default=None, description="Functions the model may call.")
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = Field(
        default=None, description="`none` hides the tools from the model; other values let it choose."
    )
    temperature: float | None = Field(
        default=None, ge=0, le=2, description="Sampling temperature; unset means 0 (greedy)."
    )
    top_p: float | None = Field(
        default=None, gt=0, le=1, description="Nucleus sampling: the probability mass kept."
    )
    max_tokens: int | None = Field(
        default=None,
        ge=1,
        description="Most tokens to generate (default 256, capped by EMBER_API_MAX_TOKENS).",
    )
    max_completion_tokens: int | None = Field(
        default=None, ge=1, description="The newer name for `max_tokens`; wins when both are set."
    )
    stop: str | list[str] | None = Field(
        default=None, description="Text that ends the answer when generated."
    )
    seed: int | None = Field(  # what torch.manual_seed takes
        default=None, ge=-(2**63), lt=2**64, description="Makes sampling repeatable."
    )
    n: int = Field(default=1, ge=1, le=1, description="Number of choices; only 1 is supported.")
    stream: bool = Field(default=False, description="Stream the answer as server-sent events.")
    stream_options: StreamOptions | None = Field(default=None, description="Options for a streamed answer.")
    user: str | None = Field(default=None, description="Accepted for compatibility; not used.")
    ember: EmberOptions | None = Field(
        default=None, description="Ember's extension: answer from a collection with citations (RAG or agent)."
    )


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [EMBEDDING_EXAMPLE]})

    model: str = Field(
        min_length=1, description="Any name: the configured embedding model answers, and the name comes back."
    )
    input: str | list[str] = Field(
        min_length=1, description="A text or a list of up to 2048 non-empty texts."
    )
    encoding_format: Literal["float", "base64"] = Field(
        default="float", description="`float` lists, or `base64` of little-endian float32 values."
    )
    user: str | None = Field(default=None, description="Accepted for compatibility; not used.")


class SearchRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [SEARCH_EXAMPLE]})

    query: str = Field(min_length=1, max_length=4000, description="What to search for, in plain words.")
    collections: list[str] = Field(
        min_length=1, max_length=32, description="The collections to search (required; at least one)."
    )
    k: int = Field(default=8, ge=1, le=100, description="How many hits to return.")
    mode: Literal["bm25", "dense", "hybrid", "hybrid+rerank"] = Field(
        default="hybrid+rerank",
        description="`bm25` (keywords), `dense` (embeddings), `hybrid` (both, fused), or `hybrid+rerank` "
        "(then a cross-encoder, when one is trained).",
    )
    filters: dict[str, Any] | None = Field(
        default=None,
        description="Chunk fields that must match: a value or a list of accepted values, on `document_id`, "
        '`title`, `page`, `source` or `heading_path`, e.g. `{"document_id": [3, 4]}`.',
    )


class CollectionCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "notes", "description": "Course notes"}]}
    )

    name: str = Field(
        min_length=1,
        max_length=200,
        pattern=COLLECTION_NAME,
        description="Letters, digits, `.`, `_` and `-`, starting with a letter or digit.",
    )
    description: str = Field(default="", max_length=10_000, description="A note for people; not searched.")


class CollectionUpdate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "lecture-notes"}]})

    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=COLLECTION_NAME,
        description="A new name (renames the collection); omit to keep it.",
    )
    description: str | None = Field(
        default=None, max_length=10_000, description="A new description; omit to keep it."
    )
