"""The question box keeps the focus, typed questions survive, chunks show verbatim, fallbacks say why.

Driven by Pilot at 80×24 against the real service; the sources come from stored conversations (what a
run leaves behind), so these tests need no generation.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from textual.widgets import Input, Markdown, OptionList, Select, Static

from ember.agents.types import Citation
from ember.platform.chunks import read_chunks
from ember.ui.app import ChatApp
from ember.ui.screens import ChunkScreen
from ember.ui.widgets import FallbackNote, UserTurn
from tests.ui.driving import SIZE, open_conversation, store_conversation, wait_until_answered

pytestmark = pytest.mark.asyncio


def _citation(service, collection: str, title: str) -> Citation:  # noqa: ANN001
    document = next(d for d in service.list_documents(collection) if d.title == title)
    chunk = read_chunks(service.db, "document", document.id, 0)[0]
    return Citation(1, chunk.chunk_id, document.id, title, chunk.location, chunk.text[:40])


def _prompt(app: ChatApp) -> Input:
    return app.query_one("#prompt", Input)


async def test_escape_returns_to_the_question_box_from_every_panel(ui_service):
    conversation = store_conversation(ui_service, "notes", [_citation(ui_service, "notes", "Trains")])
    app = ChatApp(ui_service, "notes")
    async with app.run_test(size=SIZE) as pilot:
        await open_conversation(app, pilot, conversation)
        assert app.focused is _prompt(app)  # picking a conversation ends in the question box
        await pilot.press("ctrl+s")
        assert app.focused is app.query_one("#sources", OptionList)
        await pilot.press("escape")
        assert app.focused is _prompt(app)
        await pilot.press("ctrl+l")  # the collection picker, opened
        await pilot.press("escape", "escape")  # closes the picker, then back to the question
        assert app.focused is _prompt(app)
        await pilot.press("tab", "tab")
        assert app.focused is not _prompt(app)
        await pilot.press("escape")
        assert app.focused is _prompt(app)


async def test_panel_actions_end_in_the_question_box(ui_service):
    conversation = store_conversation(ui_service, "notes", [_citation(ui_service, "notes", "Trains")])
    app = ChatApp(ui_service, "notes")
    async with app.run_test(size=SIZE) as pilot:
        await open_conversation(app, pilot, conversation)
        await pilot.press("ctrl+s", "enter")  # the first source is highlighted: Enter opens it
        await pilot.pause()
        assert isinstance(app.screen, ChunkScreen) and "23:40" in app.screen.text
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ChunkScreen) and app.focused is _prompt(app)
        app.query_one("#collection", Select).value = "gardens"
        await pilot.pause()
        assert app.collection == "gardens" and app.focused is _prompt(app)


async def test_a_typed_question_is_never_lost(ui_service):
    conversation = store_conversation(ui_service, "notes", [_citation(ui_service, "notes", "Trains")])
    app = ChatApp(ui_service, "notes")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"Where")
        await pilot.press("ctrl+s")  # no sources yet: the focus stays, and Enter still asks
        assert app.focused is _prompt(app) and any("no sources" in n.message for n in app._notifications)
        await open_conversation(app, pilot, conversation)
        assert _prompt(app).value == "Where"
        await pilot.press("ctrl+s", "enter", "escape")  # look at a source, come back
        await pilot.pause()
        await pilot.press("ctrl+s", *" do")  # typing in the sources panel goes to the question box
        assert app.focused is _prompt(app) and _prompt(app).value == "Where do"
        app.collection = "vanished"  # the question fails: it comes back to the box to retry
        await pilot.press("enter")
        await wait_until_answered(app, pilot)
        assert [str(t.render()) for t in app.query(UserTurn)][-1] == "Where do"
        assert _prompt(app).value == "Where do"


async def test_chunk_viewer_shows_text_verbatim_and_markdown_as_markdown(ui_service):
    citations = [
        _citation(ui_service, "code", "context"),
        replace(_citation(ui_service, "code", "Guide"), n=2),
    ]
    conversation = store_conversation(ui_service, "code", citations)
    app = ChatApp(ui_service, "code")
    async with app.run_test(size=SIZE) as pilot:
        await open_conversation(app, pilot, conversation)
        await pilot.press("ctrl+s", "enter")
        await pilot.pause()
        text = app.screen.query_one("#chunk-text")
        assert isinstance(text, Static) and not isinstance(text, Markdown)
        assert "__enter__() on entry, __exit__() on exit" in str(text.render())
        await pilot.press("escape", "ctrl+s", "down", "enter")
        await pilot.pause()
        assert isinstance(app.screen.query_one("#chunk-text"), Markdown)


async def test_an_agent_fallback_says_why(ui_service):
    meta = {"path": "agent_fallback", "flags": ["agent_fallback"], "fallback_reason": "malformed_tool_call"}
    conversation = store_conversation(
        ui_service, "notes", [_citation(ui_service, "notes", "Trains")], meta=meta
    )
    app = ChatApp(ui_service, "notes", agent=True)
    async with app.run_test(size=SIZE) as pilot:
        await open_conversation(app, pilot, conversation)
        note = str(app.query_one(FallbackNote).render())
        assert "fell back" in note and "tool call stayed malformed" in note
