"""The chat transcript's pieces: a user turn, an assistant answer streaming as Markdown, agent steps."""

from __future__ import annotations

import json

from textual.widgets import Collapsible, Markdown, Static

from ember.platform.types import Step


class UserTurn(Static):
    DEFAULT_CSS = "UserTurn { margin: 1 0 0 0; padding: 0 1; background: $boost; text-style: bold; }"


class AnswerView(Markdown):
    """An answer that grows as tokens arrive."""

    DEFAULT_CSS = "AnswerView { margin: 0 0 0 0; }"

    def __init__(self, text: str = "") -> None:
        super().__init__(text)
        self.text = text
        self.pieces = 0  # streamed pieces so far

    async def add(self, piece: str) -> None:
        self.text += piece
        self.pieces += 1
        await self.append(piece)


class FallbackNote(Static):
    """Says that agent mode answered from one plain search (or stopped early), and why."""

    DEFAULT_CSS = "FallbackNote { padding: 0 1; color: $warning; }"

    def __init__(self, note: str) -> None:
        super().__init__(note, markup=False)


def step_view(number: int, step: Step) -> Collapsible:
    """One agent step, collapsed to its tool call; expanding shows the thought and what came back."""
    arguments = json.dumps(step.arguments, ensure_ascii=False)
    title = f"step {number}: {step.tool}({arguments})"[:200]
    body = f"{step.thought.strip()}\n→ {step.observation.strip()}\n({step.latency_ms:.0f} ms)".strip()
    return Collapsible(Static(body, markup=False), title=title, collapsed=True, classes="step")
