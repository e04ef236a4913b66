"""`ember config show|set`: the effective settings with their sources, and writing one to config.toml."""

from __future__ import annotations

import os

import typer
from rich.markup import escape
from rich.table import Table

from ember.commands.common import console, err_console, user_errors
from ember.platform.errors import InvalidInputError

config_app = typer.Typer(no_args_is_help=True, help="Inspect and change Ember's settings.")


@config_app.command("show")
def config_show() -> None:
    """Effective settings and where each value came from (env, file or default)."""
    from ember.platform.settings import Settings, describe_sources

    with user_errors():
        settings = Settings()
        rows = describe_sources(settings)
    table = Table("setting", "value", "source")
    for name, value, source in rows:
        table.add_row(name, str(value), source)
    console.print(table)


@config_app.command("set")
def config_set(
    name: str = typer.Argument(..., help="A setting, as `ember config show` names it (e.g. llm_model)."),
    value: str = typer.Argument(..., help="Its new value."),
    if_unset: bool = typer.Option(
        False, "--if-unset", help="Leave the value alone if the config file already sets this key."
    ),
) -> None:
    """Write NAME = VALUE into the config file, keeping every other key in it."""
    from ember.platform.config_file import set_config_value
    from ember.platform.settings import ENV_PREFIX, config_file_path, read_config_file

    with user_errors():
        try:
            current = read_config_file()
        except ValueError as exc:  # the file is not valid TOML: say so rather than overwrite it
            raise InvalidInputError(str(exc)) from exc
        if if_unset and name in current:
            console.print(f"kept {name} = {escape(repr(current[name]))} in {config_file_path()}")
            return
        path, written = set_config_value(name, value)
    console.print(f"set {name} = {escape(repr(written))} in {path}")
    env_name = ENV_PREFIX + name.upper()
    if env_name in os.environ:
        err_console.print(f"[yellow]note:[/yellow] {env_name} in the environment overrides it")
