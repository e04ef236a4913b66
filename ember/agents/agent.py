"""The tool-calling agent graph (ReAct): the model picks tools until it answers, under a loop guard.

    agent → tools → agent → ... → finish        (the model called tools, then answered)
    agent → fallback                            (no tool call at all: the planned fallback)
    agent → repair → agent                      (a malformed tool call: one retry, then the fallback)
    tools → fallback                            (loop guard, a repeated call: the model is stuck)
    tools → conclude → finish                   (loop guard: step limit, token budget)

Every tool step is recorded (thought, tool, arguments, observation, latency) and streamed as it happens;
the fallback's retrieval is recorded as a search step too. When the agent does not finish on its own,
``GroundedAnswer.fallback_reason`` says why: "no_tool_call", "malformed_tool_call" or the loop guard's
"repeated_call" (path "agent_fallback"), or the loop guard's "max_steps" or "token_budget" (path "agent").
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypedDict

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph

from ember.agents.chat_model import EmberChatModel
from ember.agents.citations import verify
from ember.agents.planned_fallback import PlannedFallback
from ember.agents.prompts import AGENT_SYSTEM
from ember.agents.rag import RagGraph
from ember.agents.repetition import cut_loop
from ember.agents.tools import SCHEMAS, Toolbox, ToolError
from ember.agents.types import AnswerEvent, GroundedAnswer, Step, add_usage

OBSERVATION_CHARS = 2000  # what a step record keeps of a tool's output
REPAIR_PROMPT = (
    "Your tool call could not be parsed ({error}). Reply with exactly one call in this form: {example}"
)
REPAIR_EXAMPLE = {"name": "search", "arguments": {"query": "..."}}
CONCLUDE_PROMPT = "Stop using tools ({reason}). Answer the question now from the results above, citing [n]."
FALLBACK_THOUGHTS = {
    "no_tool_call": "The model called no tool: planned fallback (a search per sub-question, extraction, "
    "the calculator where numbers combine, then an answer).",
    "malformed_tool_call": "The model's tool call stayed malformed after one repair: planned fallback (a "
    "search per sub-question, extraction, the calculator where numbers combine, then an answer).",
    "repeated_call": "The model repeated a tool call: planned fallback (a search per sub-question, "
    "extraction, the calculator where numbers combine, then an answer).",
}


@dataclass
class AgentConfig:
    max_steps: int = 6  # tool executions
    token_budget: int = 12_000  # prompt + completion tokens over the whole run
    max_tokens: int = 200  # per model turn
    # Constrained decoding of tool calls (local models): a call that opens is always well-formed, and the
    # first turn opens one, so a small model that would only answer from memory searches first.
    constrained_tool_calls: bool = False


class AgentState(TypedDict, total=False):
    question: str
    query: str  # what the fallback searches: the question, or its stand-alone rewrite
    history: list[BaseMessage]
    messages: list[BaseMessage]
    answer: GroundedAnswer
    repaired: bool
    seen_calls: list[str]
    stop_reason: str
    route: str


class AgentGraph:
    def __init__(
        self, llm: EmberChatModel, toolbox: Toolbox, fallback: RagGraph, config: AgentConfig | None = None
    ) -> None:
        self.llm, self.toolbox, self.fallback = llm, toolbox, fallback
        self.config = config or AgentConfig()
        self.with_tools = llm.bind_tools(SCHEMAS)
        graph = StateGraph(AgentState)
        for name in ("agent", "tools", "repair", "conclude", "fallback", "finish"):
            graph.add_node(name, getattr(self, f"_{name}"))
        graph.add_edge(START, "agent")
        graph.add_conditional_edges("agent", lambda s: s["route"])
        graph.add_conditional_edges("tools", lambda s: s["route"])
        graph.add_edge("repair", "agent")
        graph.add_edge("conclude", "finish")
        graph.add_edge("fallback", END)
        graph.add_edge("finish", END)
        self.graph = graph.compile()

    def run(
        self, question: str, history: list[BaseMessage] | None = None, query: str | None = None
    ) -> GroundedAnswer:
        for event in self.stream(question, history, query):
            if event.kind == "done":
                return event.answer
        raise RuntimeError("the agent graph ended without an answer")

    def stream(
        self, question: str, history: list[BaseMessage] | None = None, query: str | None = None
    ) -> Iterator[AnswerEvent]:
        if not question.strip():
            raise ValueError("question must not be empty")
        messages = [SystemMessage(self._system()), *(history or []), HumanMessage(question)]
        state: AgentState = {
            "question": question,
            "query": query or question,
            "history": history or [],
            "messages": messages,
            "answer": GroundedAnswer("", path="agent"),
            "repaired": False,
            "seen_calls": [],
        }
        final: AgentState = {}
        started = time.perf_counter()
        limit = 4 * self.config.max_steps + 8  # the guard ends runs long before LangGraph's own limit
        for mode, payload in self.graph.stream(
            state, stream_mode=["custom", "values"], config={"recursion_limit": limit}
        ):
            if mode == "custom":
                yield payload
            else:
                final = payload
        answer = final["answer"]
        answer.timings_ms["total"] = (time.perf_counter() - started) * 1e3
        yield AnswerEvent("citations", citations=answer.citations)
        yield AnswerEvent("done", answer=answer)

    def _system(self) -> str:
        return f"{AGENT_SYSTEM}\nCollections searched by default: {', '.join(self.toolbox.collections)}."

    def _spent(self, answer: GroundedAnswer) -> int:
        return answer.usage["prompt_tokens"] + answer.usage["completion_tokens"]

    # --- nodes -------------------------------------------------------------------------------------
    def _agent(self, state: AgentState) -> AgentState:
        answer = state["answer"]
        start = time.perf_counter()
        sampling: dict = {"max_tokens": self.config.max_tokens}
        if self.config.constrained_tool_calls:
            # The first turn is forced to open a call, a search: a research task starts by finding facts.
            first = not answer.steps
            tools = [s for s in SCHEMAS if s["function"]["name"] == "search"] if first else SCHEMAS
            constraint = self.llm.backend.tool_call_constraint(tools, force_open=first)
            if constraint is not None:
                sampling["logits_processor"] = constraint
        message: AIMessage = self.with_tools.invoke(state["messages"], **sampling)
        answer.timings_ms["model"] = answer.timings_ms.get("model", 0.0) + (time.perf_counter() - start) * 1e3
        add_usage(answer.usage, message.usage_metadata)
        messages = [*state["messages"], message]
        if message.tool_calls:
            return {"messages": messages, "route": "tools"}
        if message.invalid_tool_calls:
            if state["repaired"]:
                answer.fallback_reason = "malformed_tool_call"
                return {"messages": messages, "route": "fallback"}
            return {"messages": messages, "route": "repair"}
        if not answer.steps:
            answer.fallback_reason = "no_tool_call"
            return {"messages": messages, "route": "fallback"}
        return {"messages": messages, "route": "finish"}

    def _repair(self, state: AgentState) -> AgentState:
        error = state["messages"][-1].invalid_tool_calls[0]["error"]
        example = self.llm.backend.tool_call_format.render_calls([REPAIR_EXAMPLE])
        prompt = HumanMessage(REPAIR_PROMPT.format(error=error, example=example))
        state["answer"].flags.append("malformed_tool_call_repaired")
        return {
            "messages": [*state["messages"], prompt],
            "repaired": True,
        }

    def _tools(self, state: AgentState) -> AgentState:
        answer, writer = state["answer"], get_stream_writer()
        request: AIMessage = state["messages"][-1]
        messages, seen = list(state["messages"]), list(state["seen_calls"])
        for number, call in enumerate(request.tool_calls):
            key = json.dumps([call["name"], call["args"]], sort_keys=True)
            reason = self._guard(answer, key, seen)
            if reason:
                # Every call the model made needs a reply before the conversation may continue.
                skipped = request.tool_calls[number:]
                messages += [ToolMessage(f"not run: {reason}", tool_call_id=c["id"]) for c in skipped]
                answer.flags.append(f"loop_guard:{reason}")
                answer.fallback_reason = reason
                # A repeated call means the model is stuck, not that the budget is spent: a small model
                # asked to conclude after one search rarely has the facts, the planned fallback finds them.
                route = "fallback" if reason == "repeated_call" else "conclude"
                return {"messages": messages, "stop_reason": reason, "route": route}
            seen.append(key)
            start = time.perf_counter()
            try:
                observation = self.toolbox.call(call["name"], call["args"])
            except ToolError as exc:
                observation = f"error: {exc}"
            step = Step(
                thought=request.text,
                tool=call["name"],
                arguments=call["args"],
                observation=observation[:OBSERVATION_CHARS],
                latency_ms=(time.perf_counter() - start) * 1e3,
            )
            answer.steps.append(step)
            writer(AnswerEvent("step", step=step))
            messages.append(ToolMessage(observation, tool_call_id=call["id"]))
            answer.record_prompt_passages(self.toolbox.passages)
        return {"messages": messages, "seen_calls": seen, "route": "agent"}

    def _guard(self, answer: GroundedAnswer, key: str, seen: list[str]) -> str:
        if key in seen:
            return "repeated_call"
        if len(answer.steps) >= self.config.max_steps:
            return "max_steps"
        if self._spent(answer) >= self.config.token_budget:
            return "token_budget"
        return ""

    def _conclude(self, state: AgentState) -> AgentState:
        answer = state["answer"]
        prompt = HumanMessage(CONCLUDE_PROMPT.format(reason=state["stop_reason"].replace("_", " ")))
        message = self.llm.invoke([*state["messages"], prompt], max_tokens=self.config.max_tokens)
        add_usage(answer.usage, message.usage_metadata)
        return {"messages": [*state["messages"], prompt, AIMessage(message.text)]}

    def _finish(self, state: AgentState) -> AgentState:
        answer, writer = state["answer"], get_stream_writer()
        text, looped = cut_loop(state["messages"][-1].text)
        checked = verify(text, self.toolbox.passages)
        answer.text, answer.citations = checked.text, checked.citations
        answer.flags += checked.flags + (["repetition_stopped"] if looped else [])
        writer(AnswerEvent("token", text=answer.text))
        return {"answer": answer}

    def _fallback(self, state: AgentState) -> AgentState:
        """The planned fallback (planned_fallback.py): a search per sub-question, extraction, the
        calculator where numbers combine, then a cited answer; every step recorded and streamed."""
        answer, writer = state["answer"], get_stream_writer()
        steps = list(answer.steps)

        def record(step: Step) -> None:
            steps.append(step)
            writer(AnswerEvent("step", step=step))

        thought = FALLBACK_THOUGHTS[answer.fallback_reason]
        fallback = self.fallback
        plan = PlannedFallback(
            fallback.llm, fallback.search, fallback.config, record, thought, fallback.score_sentences
        )
        result = plan.run(state["question"], state["query"], state["history"], writer)
        for name in ("prompt_tokens", "completion_tokens"):
            result.usage[name] += answer.usage[name]
        result.timings_ms["model"] = answer.timings_ms.get("model", 0.0)
        result.steps, result.fallback_reason = steps, answer.fallback_reason
        result.flags = [*answer.flags, *result.flags, "agent_fallback"]
        result.path = "agent_fallback"
        return {"answer": result}
