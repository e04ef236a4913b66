"""Helpers for driving the chat app with Pilot: ask and wait, read the status bar, store a conversation."""

from __future__ import annotations

import asyncio

from textual.widgets import OptionList, Static

from ember.agents.types import Citation, Step
from ember.platform.conversations import ConversationStore
from ember.platform.service import EmberService
from ember.ui.app import ChatApp

SIZE = (80, 24)


async def ask(app: ChatApp, pilot, question: str, timeout: float = 120) -> None:  # noqa: ANN001
    app.query_one("#prompt").value = question
    await pilot.press("enter")
    await pilot.pause()
    await wait_until_answered(app, pilot, timeout)


async def wait_until_answered(app: ChatApp, pilot, timeout: float = 120) -> None:  # noqa: ANN001
    for _ in range(int(timeout * 10)):
        if not app.busy:
            break
        await asyncio.sleep(0.1)
    await pilot.pause()


def status(app: ChatApp) -> str:
    return str(app.query_one("#status", Static).render())


def store_conversation(
    service: EmberService,
    collection: str,
    citations: list[Citation],
    steps: tuple[Step, ...] = (),
    meta: dict | None = None,
) -> int:
    """An agent conversation with one answered question, as a run of the agent stores it."""
    store = ConversationStore(service.db)
    conversation = store.start(service.collection_id(collection), "A stored question?", "agent")
    store.add(conversation, "user", "A stored question?")
    store.add(conversation, "assistant", "A stored answer [1].", citations=citations, steps=steps, meta=meta)
    return conversation


async def open_conversation(app: ChatApp, pilot, conversation: int) -> None:  # noqa: ANN001
    await pilot.press("ctrl+o")
    await pilot.pause()
    app.screen.query_one(OptionList).highlighted = [c.id for c in app.screen.conversations].index(
        conversation
    )
    await pilot.press("enter")
    await pilot.pause()
