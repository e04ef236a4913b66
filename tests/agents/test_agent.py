"""The agent graph with real tools, retriever, storage and SmolLM2; only the tool choice is scripted."""

from __future__ import annotations

import json
import re

import pytest

from ember.agents.agent import AgentConfig, AgentGraph
from ember.agents.chat_model import EmberChatModel
from ember.agents.planned_fallback import SUB_QUESTION_K
from ember.agents.rag import RagConfig, RagGraph
from ember.agents.tools import Toolbox
from ember.platform.answers import as_tool
from ember.platform.chunks import read_chunks
from tests.agents.conftest import COLLECTION
from tests.agents.scripted import ScriptedToolChooser, tool_messages


def call(name: str, **arguments) -> str:
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


@pytest.fixture
def make_agent(facts_service, local_llm):  # noqa: ANN201
    def make(script, max_steps: int = 6) -> AgentGraph:
        backend = ScriptedToolChooser(local_llm.backend, script)
        llm = EmberChatModel(backend=backend, sampling={})
        toolbox = Toolbox(
            lambda q, cols, k: facts_service.search(q, cols, k, mode="hybrid").hits,
            as_tool(lambda kind, target, around: read_chunks(facts_service.db, kind, target, around), "read"),
            lambda: [{"name": c.name, "documents": c.documents} for c in facts_service.list_collections()],
            [COLLECTION],
        )
        search = lambda q, k: facts_service.search(q, [COLLECTION], k, mode="hybrid").hits  # noqa: E731
        fallback = RagGraph(llm, search, RagConfig(k=3, max_tokens=32))
        return AgentGraph(llm, toolbox, fallback, AgentConfig(max_steps=max_steps, max_tokens=32))

    return make


def test_two_step_task_search_then_calculator(make_agent):
    def script(messages):  # noqa: ANN001, ANN202
        seen = tool_messages(messages)
        if not seen:
            return call("search", query="Kelmora Bridge length", k=2)
        if len(seen) == 1:
            meters = re.search(r"(\d+) meters long", seen[0]).group(1)
            return "The bridge length is known; doubling it." + call("calculator", expression=f"{meters} * 2")
        return None  # the real model writes the final answer

    agent = make_agent(script)
    events = list(agent.stream("How long are two Kelmora Bridges laid end to end, in meters?"))
    answer = events[-1].answer
    assert [s.tool for s in answer.steps] == ["search", "calculator"]
    assert "412 meters" in answer.steps[0].observation
    assert answer.steps[1].arguments == {"expression": "412 * 2"} and answer.steps[1].observation == "824"
    assert answer.steps[1].thought == "The bridge length is known; doubling it."
    assert all(s.latency_ms >= 0 for s in answer.steps)
    assert [e.step for e in events if e.kind == "step"] == answer.steps
    assert answer.path == "agent" and answer.text
    assert not [f for f in answer.flags if f.startswith("loop_guard")] and answer.fallback_reason == ""
    passages = agent.toolbox.passages
    assert all(passages[c.n - 1].chunk_id == c.chunk_id for c in answer.citations)


def test_a_model_repeating_one_call_is_stopped_and_handed_to_the_planned_fallback(make_agent):
    agent = make_agent(lambda messages: call("search", query="Tarn Observatory"))
    answer = agent.run("Where is the Tarn Observatory?")
    assert "loop_guard:repeated_call" in answer.flags and "agent_fallback" in answer.flags
    assert answer.fallback_reason == "repeated_call" and answer.path == "agent_fallback"
    model_steps = [s for s in answer.steps if s.arguments == {"query": "Tarn Observatory"}]
    assert len(model_steps) == 1  # the repeat was not run again
    assert answer.steps[0] is model_steps[0] and len(answer.steps) > 1  # the fallback's own searches follow
    assert answer.text  # the real model answered from what the fallback found


def test_loop_guard_stops_at_the_step_limit(make_agent):
    agent = make_agent(
        lambda messages: call("calculator", expression=f"{len(tool_messages(messages))} + 1"), 3
    )
    answer = agent.run("Count upwards.")
    assert [s.observation for s in answer.steps] == ["1", "2", "3"]
    assert "loop_guard:max_steps" in answer.flags and answer.fallback_reason == "max_steps"
    assert answer.path == "agent" and answer.text  # the budget is spent: the model concludes, no fallback


def test_malformed_call_gets_one_repair_then_succeeds(make_agent):
    def script(messages):  # noqa: ANN001, ANN202
        if "could not be parsed" not in messages[-1]["content"] and not tool_messages(messages):
            return '<tool_call>{"name": "calculator", "arguments": {"expression": "8 * 140"</tool_call>'
        if not tool_messages(messages):
            return call("calculator", expression="8 * 140")
        return None

    answer = make_agent(script).run("What do 140 tickets to the Glass Orchard cost?")
    assert "malformed_tool_call_repaired" in answer.flags
    assert [s.observation for s in answer.steps] == ["1120"]


def test_tool_errors_are_observations_not_crashes(make_agent):
    def script(messages):  # noqa: ANN001, ANN202
        plan = [call("read", id="chunk:999999"), call("calculator", expression="__import__('os')"), None]
        return plan[min(len(tool_messages(messages)), 2)]

    answer = make_agent(script).run("Read something.")
    # After the script the real model may call more tools; the first two steps are the scripted ones.
    assert [s.observation.split(":")[0] for s in answer.steps[:2]] == ["error", "error"]
    assert "chunk 999999 does not exist" in answer.steps[0].observation


QUESTION = "How many varieties of pear does the Glass Orchard grow?"


def test_no_tool_call_falls_back_to_one_search_shown_as_a_step(make_agent, facts_search):
    events = list(make_agent(lambda messages: "I will just answer.").stream(QUESTION))
    answer = events[-1].answer
    assert answer.path == "agent_fallback" and answer.fallback_reason == "no_tool_call"
    assert "agent_fallback" in answer.flags
    step, extract = answer.steps  # one clause: one search, then the fact extracted from it
    assert step.tool == "search" and step.arguments == {"query": QUESTION.rstrip("?"), "k": SUB_QUESTION_K}
    assert "140 varieties of pear" in step.observation and "no tool" in step.thought
    assert extract.tool == "extract" and extract.arguments == {"question": QUESTION.rstrip("?")}
    assert [e.step for e in events if e.kind == "step"] == answer.steps
    retrieved = {h.chunk_id for h in facts_search(QUESTION, SUB_QUESTION_K)}
    assert {c.chunk_id for c in answer.citations} <= retrieved
    assert events[-2].kind == "citations" and events[-2].citations == answer.citations


def test_the_fallback_searches_the_stand_alone_query(make_agent):
    agent = make_agent(lambda messages: "I will just answer.")
    answer = agent.run("How many varieties does it grow?", query=f"The Glass Orchard. {QUESTION}")
    searches = [s for s in answer.steps if s.tool == "search"]
    assert searches[-1].arguments["query"] == f"The Glass Orchard. {QUESTION}"  # after its clauses
    assert all("140 varieties of pear" in s.observation for s in searches)


def test_a_call_still_malformed_after_the_repair_falls_back_and_says_why(make_agent):
    agent = make_agent(lambda messages: '<tool_call>{"name": "search", "arguments": </tool_call>')
    answer = agent.run("Where is the Glass Orchard?")
    assert answer.path == "agent_fallback" and answer.fallback_reason == "malformed_tool_call"
    assert "malformed_tool_call_repaired" in answer.flags
    assert [s.tool for s in answer.steps] == ["search", "extract"]
    assert "town of Pell" in answer.steps[0].observation


def test_the_service_hands_the_agent_run_its_steps_and_fallback_reason(facts_service):
    events = list(
        facts_service.ask_stream(
            "What does a ticket to the Glass Orchard cost?",
            COLLECTION,
            agent=True,
            show_steps=True,
            max_tokens=32,
        )
    )
    answer = events[-1].answer
    assert answer.steps and [e.step for e in events if e.kind == "step"] == answer.steps
    fell_back = answer.fallback_reason in ("no_tool_call", "malformed_tool_call")
    assert (answer.path == "agent_fallback") == fell_back
    stored = facts_service.get_conversation(answer.conversation_id).messages[-1]
    assert stored.metadata["fallback_reason"] == answer.fallback_reason and stored.steps == answer.steps
