"""Helpers shared by the command modules: one console, and user errors mapped to exit codes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape

from ember.platform.errors import EmberError, InvalidInputError

console = Console()
err_console = Console(stderr=True)

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE = 0, 1, 2


def print_error(error: EmberError) -> None:
    """One line however long (no wrapping), the message's own brackets shown, not read as markup."""
    err_console.print(f"[red]error:[/red] {escape(str(error))}", soft_wrap=True)


@contextmanager
def user_errors() -> Iterator[None]:
    """Print an EmberError as one clear line; bad input exits 2, anything else the user can fix exits 1."""
    try:
        yield
    except InvalidInputError as exc:
        print_error(exc)
        raise typer.Exit(EXIT_USAGE) from exc
    except EmberError as exc:
        print_error(exc)
        raise typer.Exit(EXIT_PARTIAL) from exc


def service():  # noqa: ANN201 - the facade type is imported lazily to keep --help fast
    from ember.platform.service import EmberService

    return EmberService()
