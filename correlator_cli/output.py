"""Tables and progress for people, JSON for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()
errors = Console(stderr=True)


class Output(StrEnum):
    TABLE = "table"
    JSON = "json"


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    table = Table(title=title, show_lines=False)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    console.print(table)


def fail(message: str, details: Iterable[str] = ()) -> None:
    errors.print(f"[red]error:[/red] {message}", highlight=False)
    for detail in details:
        errors.print(f"  {detail}", highlight=False, markup=False)


def dry_run_text(name: str, result: dict[str, Any]) -> str:
    """A dry run's answer for people: whether the rule matches, and what its delivery policy would do now."""
    if not result.get("matches"):
        return f"{name}: [yellow]does not match[/yellow]"
    policy = result.get("policy")
    if not policy:
        return f"{name}: [green]matches[/green]"
    decision = policy["decision"]
    text = f"{name}: [green]matches[/green]; policy: " + ("deliver now" if decision == "deliver" else decision)
    if policy.get("reason") and decision != "deliver":
        text += f" ({policy['reason']})"
    if policy.get("due"):
        text += f", out at {policy['due']}"
    return text
