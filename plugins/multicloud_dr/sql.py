"""Named SQL queries from the files in include/sql/ (STYLE: SQL lives in .sql files).

A file holds queries introduced by `-- name: <name>` lines; a query may be several statements,
each ended by `;` at the end of a line.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parents[2] / "include" / "sql"
_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


@functools.cache
def queries(filename: str) -> dict[str, str]:
    text = (SQL_DIR / filename).read_text()
    parts = _NAME.split(text)
    found: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        lines = [line for line in body.splitlines() if not line.lstrip().startswith("--")]
        found[name] = "\n".join(lines).strip()
    return found


def quote_identifier(name: str) -> str:
    """A MySQL/MariaDB identifier in backquotes (a backquote inside doubled)."""
    return "`" + name.replace("`", "``") + "`"


def query(filename: str, name: str) -> str:
    """One statement, without its final `;`."""
    found = statements(filename, name)
    if len(found) != 1:
        raise ValueError(f"{filename}:{name} holds {len(found)} statements; use statements()")
    return found[0]


def statements(filename: str, name: str) -> list[str]:
    body = queries(filename)[name]
    return [s.strip() for s in re.split(r";\s*$", body, flags=re.MULTILINE) if s.strip()]
