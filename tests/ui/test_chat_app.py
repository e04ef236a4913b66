"""The chat app driven by Textual's Pilot at 80×24 against the real service and SmolLM2."""

from __future__ import annotations

import pytest
from textual.widgets import Collapsible, OptionList, Select, Static

from ember.agents.types import Citation, Step
from ember.platform.conversations import ConversationStore
from ember.ui.app import ChatApp
from ember.ui.screens import ChunkScreen
from ember.ui.widgets import AnswerView, UserTurn
from tests.ui.driving import SIZE
from tests.ui.driving import ask as _ask
from tests.ui.driving import status as _status

pytestmark = pytest.mark.asyncio
QUESTION = "When does the Corrowdale night train leave?"


async def test_question_streams_an_answer_with_citations(ui_service):
    app = ChatApp(ui_service, "notes")
    async with app.run_test(size=SIZE) as pilot:
        await _ask(app, pilot, QUESTION)
        assert app.query_one(AnswerView).pieces > 3  # tokens arrived one by one
        assert [str(t.render()) for t in app.query(UserTurn)] == [QUESTION]
        answer = app.query_one(AnswerView)
        assert answer.text.strip()
        assert "Trains" in [c.title for c in app.citations]
        sources = app.query_one("#sources", OptionList)
        assert sources.option_count == len(app.citations) >= 1
        assert "Sources (" in str(app.query_one("#sources-title", Static).render())
        assert "tok/s" in _status(app) and "– tok/s" not in _status(app)
        assert app.conversation_id is not None


async def test_opening_a_source_shows_the_full_chunk(ui_service):
    app = ChatApp(ui_service, "notes")
    async with app.run_test(size=SIZE) as pilot:
        await _ask(app, pilot, QUESTION)
        trains = next(i for i, c in enumerate(app.citations) if c.title == "Trains")
        sources = app.query_one("#sources", OptionList)
        sources.focus()
        sources.highlighted = trains
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ChunkScreen)
        assert "23:40" in app.screen.text and "washbasin" in app.screen.text  # the whole chunk, not the quote
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ChunkScreen)


async def test_switching_collections_starts_a_new_conversation(ui_service):
    app = ChatApp(ui_service, "notes")
    async with app.run_test(size=SIZE) as pilot:
        picker = app.query_one("#collection", Select)
        assert picker.value == "notes"
        app.conversation_id = 99
        picker.value = "gardens"
        await pilot.pause()
        assert app.collection == "gardens" and app.conversation_id is None
        assert "gardens" in _status(app)
        await _ask(app, pilot, "What colour are the tomatoes?")
        assert {c.title for c in app.citations} == {"Gardens"}


async def test_agent_steps_are_inline_and_collapsible(ui_service):
    # SmolLM2-135M falls back to plain RAG instead of calling tools, so the steps come from a stored
    # agent conversation (the same records a capable model's run leaves behind).
    store = ConversationStore(ui_service.db)
    conversation = store.start(ui_service.collection_id("notes"), "Where do the tomatoes grow?", "agent")
    store.add(conversation, "user", "Where do the tomatoes grow?")
    observation = "[1] Gardens: blue tomatoes in raised beds"
    step = Step("look it up", "search", {"query": "tomatoes"}, observation, 12.0)
    quote = "The Brackenfield garden grows blue tomatoes in raised beds."
    citation = Citation(1, 1, 1, "Gardens", "Gardens", quote)
    store.add(conversation, "assistant", "In raised beds [1].", steps=[step, step], citations=[citation])
    app = ChatApp(ui_service, "notes", agent=True)
    async with app.run_test(size=SIZE) as pilot:
        assert "agent" in str(app.query_one("#mode", Static).render())
        await pilot.press("ctrl+o")
        await pilot.pause()
        app.screen.query_one(OptionList).highlighted = [c.id for c in app.screen.conversations].index(
            conversation
        )
        await pilot.press("enter")
        await pilot.pause()
        steps = list(app.query(Collapsible))
        assert len(steps) == 2 and all(s.collapsed for s in steps)
        assert "search" in str(steps[0].title) and "tomatoes" in str(steps[0].title)
        await pilot.press("ctrl+t")
        assert all(not s.collapsed for s in app.query(Collapsible))
        await pilot.press("ctrl+t")
        assert all(s.collapsed for s in app.query(Collapsible))
        assert [c.title for c in app.citations] == ["Gardens"]


async def test_previous_conversation_reopens(ui_service):
    app = ChatApp(ui_service, "notes")
    async with app.run_test(size=SIZE) as pilot:
        await _ask(app, pilot, QUESTION)
        first = app.conversation_id
        await pilot.press("ctrl+n")
        assert app.conversation_id is None and not app.query(AnswerView)
        await pilot.press("ctrl+o")
        await pilot.pause()
        chosen = next(i for i, c in enumerate(app.screen.conversations) if c.id == first)
        app.screen.query_one(OptionList).highlighted = chosen
        await pilot.press("enter")
        await pilot.pause()
        assert app.conversation_id == first and len(app.query(AnswerView)) == 1 and app.citations


async def test_errors_are_notifications_not_crashes(ui_service):
    app = ChatApp(ui_service, "does-not-exist")
    async with app.run_test(size=SIZE) as pilot:
        assert any("does not exist" in n.message for n in app._notifications)
        app.collection = "vanished"  # e.g. deleted from another terminal
        await _ask(app, pilot, "anything?")
        assert any("vanished" in n.message for n in app._notifications)
        assert app.is_running and not app.busy
