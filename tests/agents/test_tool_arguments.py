"""The agent's tools given whatever arguments a model sends (issue 16, D5): a ToolError or an observation.

The tools run over a small real collection (SQLite, BM25 + FAISS index) with the callables the platform
gives the agent; the agent turns a ToolError into the model's next observation.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ember.agents.tools import SCHEMAS, Toolbox, ToolError
from ember.platform.answers import as_tool
from ember.platform.chunks import read_chunks
from ember.platform.service import EmberService
from ember.platform.settings import Settings

COLLECTION = "notes"


@pytest.fixture(scope="module")
def toolbox(tmp_path_factory) -> Iterator[Toolbox]:
    root = tmp_path_factory.mktemp("tool-arguments")
    docs = root / "docs"
    docs.mkdir()
    (docs / "tides.md").write_text(
        "# Tides\n\nHigh tide at Quillon harbour comes at six.\n\nLow tide at noon."
    )
    (docs / "bells.md").write_text("# Bells\n\nThe chapel bell rings twelve times at noon.")
    (docs / "gulls.md").write_text("# Gulls\n\nGulls nest on the old lighthouse roof.")
    (docs / "ferry.md").write_text("# Ferry\n\nThe ferry to Pell leaves every hour.")
    database_url = f"sqlite:///{root / 'ember.db'}"
    service = EmberService(Settings(home=root / "home", database_url=database_url, sync_indexes=True))
    service.ingest(str(docs), COLLECTION)
    yield Toolbox(
        as_tool(lambda query, names, k: service.search(query, names, k, mode="bm25").hits, "search"),
        as_tool(lambda kind, target, around: read_chunks(service.db, kind, target, around), "read"),
        lambda: [{"name": c.name, "documents": c.documents} for c in service.list_collections()],
        [COLLECTION],
    )
    service.db.dispose()


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("read", {"id": "chunk:99999999999999999999999"}),  # OverflowError in SQLite
        ("read", {"id": "chunk:" + "9" * 5000}),  # over int()'s 4,300-digit limit
        ("read", {"id": "chunk:²"}),  # a digit to str.isdigit, not to int()
        ("read", {"id": "chunk:1", "around": float("inf")}),
        ("search", {"query": "tide", "k": float("inf")}),
        ("search", {"query": "tide", "k": float("-inf")}),
        ("search", {"query": "tide", "k": float("nan")}),
    ],
)
def test_arguments_that_used_to_crash_are_tool_errors(toolbox, tool, arguments):
    with pytest.raises(ToolError, match=f"^{tool}: "):
        toolbox.call(tool, arguments)


def test_valid_arguments_still_work(toolbox):
    assert "Quillon" in toolbox.call("search", {"query": "high tide harbour", "k": "2"})
    assert "chunk:" in toolbox.call("read", {"id": "document:1", "around": 0})
    assert "chunk:" in toolbox.call("read", {"id": "chunk:0001"})
    assert toolbox.call("calculator", {"expression": "6 * 7"}) == "42"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
KNOWN_KEYS = sorted({key for s in SCHEMAS for key in s["function"]["parameters"]["properties"]})
ID_TEXT = st.builds(
    lambda kind, number: f"{kind}:{number}",
    st.sampled_from(["chunk", "document", "page", ""]),
    st.integers(min_value=-5, max_value=2**70).map(str) | st.text(max_size=6),
)
VALUES = JSON | ID_TEXT | st.sampled_from([float("inf"), float("-inf"), float("nan"), "Infinity", "1e999"])
ARGUMENTS = st.dictionaries(st.sampled_from(KNOWN_KEYS) | st.text(max_size=5), VALUES, max_size=4) | JSON
TOOLS = st.sampled_from([s["function"]["name"] for s in SCHEMAS]) | st.text(max_size=8)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tool=TOOLS, arguments=ARGUMENTS)
@example(tool="read", arguments={"id": "chunk:99999999999999999999999"})
@example(tool="read", arguments={"id": "document:²"})
@example(tool="read", arguments={"id": "chunk:1", "around": float("inf")})
@example(tool="search", arguments={"query": "tide", "k": float("inf")})
def test_any_json_arguments_give_an_observation_or_a_tool_error(toolbox, tool, arguments):
    try:
        observation = toolbox.call(tool, arguments)
    except ToolError as exc:
        observation = f"error: {exc}"  # what the agent shows the model
    assert isinstance(observation, str) and observation
