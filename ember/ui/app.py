"""`ember chat`: a terminal chat over one collection that streams answers and shows their sources.

Layout (fits 80×24): collection picker and mode on top; the transcript (answers as Markdown, agent
steps as collapsible rows) beside the sources panel; the question box; a status bar with the model
and its speed; the footer with the key bindings. Every call into the service happens in a worker
thread or under a guard that turns errors into notifications: the app itself never crashes.

The models load in the background from the start, with their progress in the status bar; a question
asked meanwhile waits for them ("loading model…"), then shows "thinking…". The question box keeps
the focus: Escape returns to it from anywhere, every panel action ends there, and typing elsewhere
goes into it, so a typed question is never lost.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import events, on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Collapsible, Footer, Input, OptionList, Select, Static
from textual.widgets.option_list import Option

from ember.platform.types import Answer, Citation, Step, describe_fallback
from ember.ui.screens import ChunkScreen, ConversationsScreen
from ember.ui.widgets import AnswerView, FallbackNote, UserTurn, step_view

if TYPE_CHECKING:
    from ember.platform.service import EmberService


class ChatApp(App[None]):
    TITLE = "Ember"
    CSS = """
    #topbar { height: 3; }
    #collection { width: 1fr; }
    #mode { width: 16; padding: 1 1; text-align: center; }
    #body { height: 1fr; }
    #transcript { width: 1fr; padding: 0 1; }
    #sidebar { width: 30; border-left: vkey $primary; }
    #sources-title { height: 1; padding: 0 1; text-style: bold; background: $primary-background; }
    #sources { height: 1fr; border: none; }
    #prompt { height: 3; }
    #status { height: 1; padding: 0 1; background: $primary-background; color: $text-muted; }
    """
    BINDINGS = [
        Binding("escape", "focus_prompt", "Question"),
        Binding("ctrl+n", "new_conversation", "New"),
        Binding("ctrl+o", "open_conversation", "History"),
        Binding("ctrl+l", "pick_collection", "Collection"),
        Binding("ctrl+s", "focus_sources", "Sources"),
        Binding("ctrl+t", "toggle_steps", "Steps"),
        Binding("ctrl+g", "toggle_agent", "Agent"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, service: EmberService, collection: str | None = None, agent: bool = False) -> None:
        super().__init__()
        self.service = service
        self.collection = collection
        self.agent = agent
        self.conversation_id: int | None = None
        self.citations: list[Citation] = []
        self.busy = False
        self.speed: float | None = None
        self.state = "ready"
        self.model_name = Path(service.settings.llm_model).name
        self.loading: str | None = "loading…"  # the model-loading stage, None once loaded (or failed)
        self.loading_started = time.perf_counter()
        self.models_ready = threading.Event()  # set when loading ends either way

    # --- layout ----------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Horizontal(id="topbar"):
            yield Select([], prompt="collection", allow_blank=True, id="collection")
            yield Static("", id="mode")
        with Horizontal(id="body"):
            yield VerticalScroll(id="transcript")
            with Vertical(id="sidebar"):
                yield Static("Sources", id="sources-title")
                yield OptionList(id="sources")
        # Not select_on_focus: a key typed after the focus comes back must not replace the question.
        yield Input(placeholder="Ask a question…", id="prompt", select_on_focus=False)
        yield Static("", id="status")
        yield Footer()

    def on_mount(self) -> None:
        names = self._guard(lambda: [c.name for c in self.service.list_collections()]) or []
        picker = self.query_one("#collection", Select)
        picker.set_options([(name, name) for name in names])
        if self.collection and self.collection not in names:
            self.notify(f"collection '{self.collection}' does not exist", severity="error")
            self.collection = None
        self.collection = self.collection or (names[0] if names else None)
        if self.collection:
            picker.value = self.collection
        else:
            self.notify(
                "no collections yet: run `ember sample` or `ember ingest PATH -c NAME`", severity="warning"
            )
        self._refresh_labels()
        self.query_one("#prompt", Input).focus()
        self._loading_ticker = self.set_interval(0.5, self._refresh_labels)
        self.load_models()

    # --- loading the models ----------------------------------------------------------------------
    @work(thread=True, group="load", exit_on_error=False)
    def load_models(self) -> None:
        try:
            self.service.warm_up(lambda stage: self.call_from_thread(self._set_loading, stage))
        except Exception as exc:  # noqa: BLE001 - asking will report it again; the app keeps running
            self.call_from_thread(self._loaded, f"model not loaded: {exc}")
        else:
            self.call_from_thread(self._loaded, None)
        finally:
            self.models_ready.set()

    def _set_loading(self, stage: str) -> None:
        self.loading = stage
        self._refresh_labels()

    def _loaded(self, problem: str | None) -> None:
        seconds = time.perf_counter() - self.loading_started
        self.loading = None
        self._loading_ticker.stop()
        if problem:
            self.notify(problem, title="error", severity="error", timeout=8)
        if not self.busy:  # else the waiting question's own state ("thinking…") follows
            self.state = "model not loaded" if problem else f"ready · model loaded in {seconds:.1f} s"
        self._refresh_labels()

    def _refresh_labels(self) -> None:
        self.query_one("#mode", Static).update("agent" if self.agent else "RAG")
        speed = f"{self.speed:.1f} tok/s" if self.speed is not None else "– tok/s"
        where = self.collection or "no collection"
        conversation = f"#{self.conversation_id}" if self.conversation_id else "new"
        state = self.state
        if self.loading is not None:
            waits = " (your question is next)" if self.busy else ""
            state = f"{self.loading} {time.perf_counter() - self.loading_started:.0f} s{waits}"
        line = f"{self.model_name} · {speed} · {where} · conversation {conversation} · {state}"
        self.query_one("#status", Static).update(line)

    def _guard(self, call):  # noqa: ANN001, ANN202 - any service call: errors become notifications
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - the app must survive anything the service raises
            self.notify(str(exc) or type(exc).__name__, title="error", severity="error", timeout=8)
            return None

    # --- asking ----------------------------------------------------------------------------------
    @on(Input.Submitted, "#prompt")
    def ask_question(self, event: Input.Submitted) -> None:
        question = event.value.strip()
        if not question:
            return
        if self.busy:
            self.notify("still answering the previous question", severity="warning")
            return
        if not self.collection:
            self.notify("pick a collection first (ctrl+l)", severity="error")
            return
        event.input.value = ""
        transcript = self.query_one("#transcript", VerticalScroll)
        answer = AnswerView()
        transcript.mount(UserTurn(question, markup=False))
        transcript.mount(answer)
        transcript.scroll_end(animate=False)
        self.busy, self.state = True, "thinking…"
        self._refresh_labels()
        self.stream_answer(question, answer)

    @work(thread=True, exclusive=True, group="ask")
    def stream_answer(self, question: str, answer: AnswerView) -> None:
        self.models_ready.wait()  # the status bar says "loading model…" until then
        self.call_from_thread(self._set_state, "thinking…")
        started, first_token, tokens = time.perf_counter(), None, 0
        steps = 0
        try:
            events = self.service.ask_stream(
                question,
                self.collection,
                agent=self.agent,
                conversation_id=self.conversation_id,
                show_steps=True,
            )
            for event in events:
                if event.kind == "token":
                    if first_token is None:
                        first_token = time.perf_counter()
                        self.call_from_thread(self._set_state, "answering…")
                    tokens += 1
                    self.call_from_thread(answer.add, event.text)
                    if tokens % 8 == 0:
                        self.call_from_thread(self._set_speed, tokens, time.perf_counter() - first_token)
                elif event.kind == "step":
                    steps += 1
                    self.call_from_thread(self._add_step, steps, event.step, answer)
                elif event.kind == "citations":
                    self.call_from_thread(self._show_sources, event.citations)
                elif event.kind == "done":
                    self.call_from_thread(self._finish_answer, event.answer, answer)
            completion = tokens
            if first_token:
                self.call_from_thread(self._set_speed, completion, time.perf_counter() - first_token)
        except Exception as exc:  # noqa: BLE001 - shown to the user; the app keeps running
            self.call_from_thread(
                self.notify, str(exc) or type(exc).__name__, title="error", severity="error"
            )
            self.call_from_thread(self._restore_question, question)
        finally:
            self.call_from_thread(self._done_asking, time.perf_counter() - started)

    def _set_state(self, state: str) -> None:
        self.state = state
        self._refresh_labels()

    def _restore_question(self, question: str) -> None:
        """Give an unanswered question back to the box, unless a new one is being typed there."""
        prompt = self.query_one("#prompt", Input)
        if not prompt.value:
            prompt.value = question

    def _set_speed(self, tokens: int, seconds: float) -> None:
        if seconds > 0:
            self.speed = tokens / seconds
            self._refresh_labels()

    def _add_step(self, number: int, step: Step, answer: AnswerView) -> None:
        self.query_one("#transcript", VerticalScroll).mount(step_view(number, step), before=answer)

    async def _finish_answer(self, result: Answer, answer: AnswerView) -> None:
        self.conversation_id = result.conversation_id
        if result.text and result.text.strip() != answer.text.strip():
            answer.text = result.text
            await answer.update(result.text)
        self._show_sources(result.citations)
        transcript = self.query_one("#transcript", VerticalScroll)
        note = describe_fallback(result.path, result.fallback_reason)
        if note:
            await transcript.mount(FallbackNote(note), after=answer)
        transcript.scroll_end(animate=False)

    def _done_asking(self, seconds: float) -> None:
        self.busy, self.state = False, f"answered in {seconds:.1f} s"
        self._refresh_labels()

    # --- sources ---------------------------------------------------------------------------------
    def _show_sources(self, citations: list[Citation]) -> None:
        self.citations = citations
        sources = self.query_one("#sources", OptionList)
        sources.clear_options()
        for c in citations:
            label = Text.assemble((f"[{c.n}] {c.title}", "bold"), f"\n{c.location}\n", (c.quote, "italic"))
            sources.add_option(Option(label, id=str(c.chunk_id)))
        self.query_one("#sources-title", Static).update(f"Sources ({len(self.citations)})")

    @on(OptionList.OptionSelected, "#sources")
    def open_source(self, event: OptionList.OptionSelected) -> None:
        chunk = self._guard(lambda: self.service.get_chunk(int(event.option.id)))
        if chunk is None:
            return
        documents = self._guard(lambda: self.service.list_documents(chunk.collection)) or []
        markdown = any(d.id == chunk.document_id and d.mime_type == "text/markdown" for d in documents)
        screen = ChunkScreen(chunk.title, chunk.location, chunk.text, markdown)
        self.push_screen(screen, lambda _: self.action_focus_prompt())

    # --- collections and conversations -----------------------------------------------------------
    @on(Select.Changed, "#collection")
    def switch_collection(self, event: Select.Changed) -> None:
        self.action_focus_prompt()
        if event.value is Select.BLANK or event.value == self.collection:
            return
        self.collection = str(event.value)
        self.action_new_conversation()
        self.notify(f"now asking '{self.collection}'")

    def _clear(self) -> None:
        self.query_one("#transcript", VerticalScroll).remove_children()
        self._show_sources([])

    def action_new_conversation(self) -> None:
        if self.busy:
            self.notify("wait for the answer to finish", severity="warning")
            return
        self.conversation_id = None
        self._clear()
        self._refresh_labels()

    def action_open_conversation(self) -> None:
        conversations = self._guard(lambda: self.service.list_conversations(self.collection))
        if conversations is None:
            return
        if not conversations:
            self.notify("no previous conversations in this collection")
            return
        self.push_screen(ConversationsScreen(conversations), self._load_conversation)

    def _load_conversation(self, conversation_id: int | None) -> None:
        self.action_focus_prompt()
        if conversation_id is None:
            return
        conversation = self._guard(lambda: self.service.get_conversation(conversation_id))
        if conversation is None:
            return
        self.conversation_id = conversation.id
        self._clear()
        transcript = self.query_one("#transcript", VerticalScroll)
        last_citations: list[Citation] = []
        for message in conversation.messages:
            if message.role == "user":
                transcript.mount(UserTurn(message.content, markup=False))
                continue
            for number, step in enumerate(message.steps, 1):
                transcript.mount(step_view(number, step))
            transcript.mount(AnswerView(message.content))
            meta = message.metadata
            note = describe_fallback(meta.get("path", ""), meta.get("fallback_reason", ""))
            if note:
                transcript.mount(FallbackNote(note))
            last_citations = message.citations
        self._show_sources(last_citations)
        self._refresh_labels()
        transcript.scroll_end(animate=False)

    def action_pick_collection(self) -> None:
        picker = self.query_one("#collection", Select)
        picker.focus()
        picker.expanded = True

    def action_focus_sources(self) -> None:
        sources = self.query_one("#sources", OptionList)
        if not sources.option_count:
            self.notify("no sources yet: ask a question first")
            return
        if sources.highlighted is None:
            sources.highlighted = 0  # so Enter opens a source straight away
        sources.focus()

    def action_focus_prompt(self) -> None:
        self.query_one("#prompt", Input).focus()

    def on_key(self, event: events.Key) -> None:
        """Typing while a panel has the focus goes into the question box (the picker keeps its keys)."""
        prompt, focused = self.query_one("#prompt", Input), self.focused
        if not event.is_printable or focused is None or focused is prompt:
            return
        if self.screen is not self.screen_stack[0] or any(
            isinstance(node, Select) for node in focused.ancestors_with_self
        ):
            return
        event.stop()
        prompt.focus()
        prompt.insert_text_at_cursor(event.character or "")

    def action_toggle_steps(self) -> None:
        steps = list(self.query(Collapsible))
        collapse = any(not s.collapsed for s in steps)
        for step in steps:
            step.collapsed = collapse

    def action_toggle_agent(self) -> None:
        self.agent = not self.agent
        self.notify(
            "agent mode: tools and several searches" if self.agent else "RAG mode: one search, one answer"
        )
        self._refresh_labels()
