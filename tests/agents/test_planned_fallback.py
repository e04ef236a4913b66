"""The planned fallback's control flow: a scripted model over real retrieval, tools and citations."""

from __future__ import annotations

import json
import re

from ember.agents.agent import AgentConfig, AgentGraph
from ember.agents.chat_model import EmberChatModel
from ember.agents.planned_fallback import sub_questions
from ember.agents.rag import RagConfig, RagGraph
from ember.agents.tools import Toolbox
from tests.agents.conftest import COLLECTION
from tests.agents.scripted import ScriptedModel

TASK = "How many astronomers work at the Tarn Observatory, multiplied by the length of the Kelmora Bridge?"


def test_sub_questions_are_the_task_clauses_that_say_something():
    assert sub_questions(TASK) == [
        "How many astronomers work at the Tarn Observatory",
        "multiplied by the length of the Kelmora Bridge",
        TASK,
    ]
    ratio = "How many times more parameters does GPT-3 have than DeepMind's Chinchilla?"
    assert sub_questions(ratio) == [
        "How many times more parameters does GPT-3 have",
        "than DeepMind's Chinchilla",
        ratio,
    ]
    assert sub_questions("Where is the Glass Orchard?") == ["Where is the Glass Orchard"]


def test_one_search_per_sub_question_then_extraction_then_the_calculator(facts_service, local_llm):
    def script(messages: list[dict]) -> str:
        prompt = messages[-1]["content"]
        if messages[0]["content"].startswith("Read the passages"):  # extraction: quote the number found
            numbers = {"astronomers": r"employs (\d+) astronomers", "Kelmora": r"is (\d+) meters long"}
            asked = [p for word, p in numbers.items() if word in prompt.split("Question:")[1]]
            if len(asked) > 1:
                return "not found"  # the whole task: no single fact answers it
            return f"The value is {re.search(asked[0], prompt).group(1)}."
        if prompt.startswith("Facts:"):
            expression = " * ".join(re.findall(r"\d+", prompt.split("Task:")[0]))
            call = json.dumps({"name": "calculator", "arguments": {"expression": expression}})
            return f"<tool_call>{call}</tool_call>"
        if "Facts found:" in prompt:
            return "The product is 11124 [1]."
        return "I will answer from memory."  # the agent's own turn: no tool call

    llm = EmberChatModel(backend=ScriptedModel(local_llm.backend, script))
    search = lambda q, k: facts_service.search(q, [COLLECTION], k, mode="hybrid").hits  # noqa: E731
    toolbox = Toolbox(lambda q, c, k: search(q, k), lambda *a: [], lambda: [], [COLLECTION])
    agent = AgentGraph(llm, toolbox, RagGraph(llm, search, RagConfig()), AgentConfig())
    events = list(agent.stream(TASK))
    answer = events[-1].answer
    assert answer.path == "agent_fallback" and answer.fallback_reason == "no_tool_call"
    assert [s.tool for s in answer.steps] == ["search", "extract"] * 3 + ["calculator"]
    searched = [s.arguments["query"] for s in answer.steps if s.tool == "search"]
    assert searched == sub_questions(TASK)
    assert (
        answer.steps[-1].arguments == {"expression": "27 * 412"} and answer.steps[-1].observation == "11124"
    )
    assert [e.step for e in events if e.kind == "step"] == answer.steps
    titles = {facts_service.get_chunk(chunk_id).title for chunk_id in answer.prompt_chunk_ids}
    assert {"Kelmora Bridge", "Tarn Observatory"} <= titles
    assert answer.text.startswith("The product is 11124") and answer.citations
