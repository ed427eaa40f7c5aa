"""``correlator rules test`` for people: whether the rule matches, and what its delivery policy would do now."""

from __future__ import annotations

from typing import Any

import pytest

from correlator_cli.output import dry_run_text


@pytest.mark.parametrize(
    ("result", "text"),
    [
        ({"matches": False, "policy": None}, "page: [yellow]does not match[/yellow]"),
        ({"matches": True, "policy": None}, "page: [green]matches[/green]"),
        (
            {"matches": True, "policy": {"decision": "deliver", "reason": "", "group": None, "due": None}},
            "page: [green]matches[/green]; policy: deliver now",
        ),
        (
            {"matches": True, "policy": {"decision": "throttled", "reason": "drop", "group": None, "due": None}},
            "page: [green]matches[/green]; policy: throttled (drop)",
        ),
        (
            {
                "matches": True,
                "policy": {"decision": "grouped", "reason": "group", "group": "g", "due": "2026-11-23T10:00:40Z"},
            },
            "page: [green]matches[/green]; policy: grouped (group), out at 2026-11-23T10:00:40Z",
        ),
    ],
)
def test_the_dry_run_says_what_the_policy_would_do(result: dict[str, Any], text: str) -> None:
    assert dry_run_text("page", result) == text
