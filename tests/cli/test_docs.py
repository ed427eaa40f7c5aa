"""The rules-as-code page's sample is a valid rules file that uses every action."""

from __future__ import annotations

from pathlib import Path

from correlator.rules import ACTION_CONFIGS
from correlator_cli.rulesync import load_rules

PAGE = Path(__file__).resolve().parents[2] / "docs" / "rules-as-code.md"


def test_the_sample_rules_file_is_valid_and_covers_every_action(tmp_path: Path) -> None:
    sample = PAGE.read_text(encoding="utf-8").split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "rules.yaml"
    path.write_text(sample, encoding="utf-8")
    rules = load_rules(path)
    assert {rule["action"] for rule in rules} | {"script"} >= set(ACTION_CONFIGS)
    assert "exec" in sample  # the alias too
