"""The README's quick start is two commands, and CI runs the test one verbatim."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def quick_start_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, re.S)]


def test_quick_start_has_exactly_two_commands() -> None:
    commands = quick_start_commands()
    assert len(commands) == 2, commands
    assert all("\n" not in c for c in commands), commands
    assert "python -m tracks.run --all" in commands[0]
    assert "pytest" in commands[1] and "tracks/" in commands[1] and "-n auto" in commands[1]


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert quick_start_commands()[1] in ci_lines


def test_certify_workflow_runs_the_readme_commands() -> None:
    workflow = (ROOT / ".github" / "workflows" / "certify.yml").read_text()
    runs = [line.split("run:", 1)[1].strip() for line in workflow.splitlines()
            if line.strip().startswith("run:") and line.split("run:", 1)[1].strip()]
    for command in quick_start_commands():
        assert command in runs, command
    assert "--badges results/badges" in quick_start_commands()[0]
    assert "upload-artifact" in workflow
