"""Write one setting into the config file (``EMBER_CONFIG`` or ``$EMBER_HOME/config.toml``).

Only that setting's line changes: every other key, comment and table the user wrote stays as it was.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ember.platform.errors import InvalidInputError
from ember.platform.settings import Settings, config_file_path

_TABLE_HEADER = re.compile(r"^\s*\[")


def set_config_value(name: str, raw: str) -> tuple[Path, Any]:
    """Validate ``raw`` as setting ``name`` and write it to the config file; returns (file, value)."""
    if name not in Settings.model_fields:
        raise InvalidInputError(f"unknown setting {name!r}; `ember config show` lists them")
    try:
        value = getattr(Settings(**{name: raw}), name)
    except ValidationError as exc:
        problem = exc.errors()[0]["msg"]
        raise InvalidInputError(f"{name} = {raw!r} is not valid: {problem}") from exc
    path = config_file_path()
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    updated = _with_line(text, name, f"{name} = {_toml_value(value)}\n")
    if tomllib.loads(updated).get(name) != tomllib.loads(f"v = {_toml_value(value)}")["v"]:
        raise InvalidInputError(f"could not rewrite {name} in {path}: edit that file by hand")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(updated, encoding="utf-8")
    partial.replace(path)
    return path, value


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)  # JSON's string escapes are valid TOML ones


def _with_line(text: str, name: str, line: str) -> str:
    """``text`` with the top-level assignment of ``name`` replaced by ``line``, or ``line`` added
    before the first table (top-level keys must come before any ``[table]``)."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    key = re.compile(rf"^\s*{re.escape(name)}\s*=")
    first_table = next((i for i, existing in enumerate(lines) if _TABLE_HEADER.match(existing)), len(lines))
    for i in range(first_table):
        if key.match(lines[i]):
            lines[i] = line
            return "".join(lines)
    lines.insert(first_table, line)
    return "".join(lines)
