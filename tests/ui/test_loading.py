"""The chat loads its models in the background from the start, and says so until they are loaded."""

from __future__ import annotations

import asyncio

import pytest

from ember.platform.service import EmberService
from ember.ui.app import ChatApp
from ember.ui.widgets import AnswerView
from tests.ui.driving import SIZE, status

pytestmark = pytest.mark.asyncio


async def test_a_question_asked_while_the_model_loads_waits_then_thinks(ui_service):
    service = EmberService(ui_service.settings)  # its own, not yet loaded, model
    app = ChatApp(service, "notes")
    # SmolLM2 loads in under a second; holding the lock its load takes keeps it "loading" while we look.
    service._llm_lock.acquire()
    try:
        async with app.run_test(size=SIZE) as pilot:
            try:
                app.query_one("#prompt").value = "When does the Corrowdale night train leave?"
                await pilot.press("enter")
                await asyncio.sleep(1.5)
                while_loading, answered_meanwhile = status(app), app.query_one(AnswerView).text
            finally:
                service._llm_lock.release()
            seen: list[str] = []
            for _ in range(1200):
                line = status(app).rsplit(" · ", 1)[-1]
                if not seen or seen[-1] != line:
                    seen.append(line)
                if not app.busy:
                    break
                await asyncio.sleep(0.1)
            assert "loading model" in while_loading and "(your question is next)" in while_loading
            assert not answered_meanwhile
            assert "thinking…" in seen and seen[-1].startswith("answered in"), seen
            assert app.query_one(AnswerView).text.strip()
    finally:
        service.close()


async def test_the_status_bar_says_when_the_model_is_ready(ui_service):
    app = ChatApp(ui_service, "notes")
    async with app.run_test(size=SIZE):
        for _ in range(600):
            if app.models_ready.is_set():
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.2)
        assert "ready · model loaded in" in status(app)
