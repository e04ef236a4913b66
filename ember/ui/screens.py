"""Modal screens: the full chunk behind a citation, and the list of previous conversations."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown, OptionList, Static
from textual.widgets.option_list import Option

from ember.platform.types import ConversationRecord


class ChunkScreen(ModalScreen[None]):
    """The whole passage a citation quotes, with its document title and location: as Markdown for
    Markdown documents, else verbatim (so ``__enter__()`` is not read as emphasis)."""

    BINDINGS = [Binding("escape,q", "dismiss", "Close")]
    DEFAULT_CSS = """
    ChunkScreen { align: center middle; }
    ChunkScreen > Vertical { width: 90%; height: 85%; border: round $accent; background: $surface; }
    ChunkScreen #chunk-title { height: auto; padding: 0 1; text-style: bold; }
    """

    def __init__(self, title: str, location: str, text: str, markdown: bool = False) -> None:
        super().__init__()
        self.chunk_title, self.location, self.text, self.markdown = title, location, text, markdown

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"{self.chunk_title} · {self.location}", markup=False, id="chunk-title")
            with VerticalScroll():
                if self.markdown:
                    yield Markdown(self.text, id="chunk-text")
                else:
                    yield Static(self.text, markup=False, id="chunk-text")

    def action_dismiss(self) -> None:
        self.dismiss(None)


class ConversationsScreen(ModalScreen[int | None]):
    """Pick a previous conversation of the current collection; returns its id."""

    BINDINGS = [Binding("escape", "dismiss_none", "Close")]
    DEFAULT_CSS = """
    ConversationsScreen { align: center middle; }
    ConversationsScreen > OptionList { width: 90%; height: 80%; border: round $accent; }
    """

    def __init__(self, conversations: list[ConversationRecord]) -> None:
        super().__init__()
        self.conversations = conversations

    def compose(self) -> ComposeResult:
        options = [
            Option(
                f"{c.updated_at:%Y-%m-%d %H:%M}  {c.title[:60]}  ({c.message_count} messages)", id=str(c.id)
            )
            for c in self.conversations
        ]
        yield OptionList(*options, id="conversation-list")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(int(event.option.id))

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
