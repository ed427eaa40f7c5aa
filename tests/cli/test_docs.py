"""The rules-as-code page's sample is a valid rules file that uses every action."""

from __future__ import annotations

from pathlib import Path

from correlator.registry import ACTION_ALIASES, rule_actions
from correlator_cli.rulesync import load_rules

PAGE = Path(__file__).resolve().parents[2] / "docs" / "rules-as-code.md"


def test_the_sample_rules_file_is_valid_and_covers_every_action(tmp_path: Path) -> None:
    sample = PAGE.read_text(encoding="utf-8").split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "rules.yaml"
    path.write_text(sample, encoding="utf-8")
    rules = load_rules(path)
    actions = {rule["action"] for rule in rules}
    assert actions >= set(rule_actions())
    assert set(ACTION_ALIASES) <= {
        line.split("action:")[1].split()[0] for line in sample.splitlines() if "action:" in line
    }
