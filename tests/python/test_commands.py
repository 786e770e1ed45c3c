"""Honest commands: --version, the usage without a command, a help text and a default
for every option, every flag checked before anything runs. None of these needs a database:
DATABASE_URL points at no server, so anything that tried to connect would end in exit 1."""

from __future__ import annotations

import argparse

from conftest import run_cli
from seedtest_analytics import __version__
from seedtest_analytics.cli import build_parser

UNREACHABLE = {"DATABASE_URL": "postgresql://nobody@/nodb?host=/nonexistent-seedtest-socket-dir"}
COMMANDS = ["init-db", "aggregate", "detect-inactivity", "run", "backfill", "dbt-retry",
            "docs"]


def test_version() -> None:
    result = run_cli(None, "--version", env=UNREACHABLE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"seedtest-analytics {__version__}"


def test_no_command_shows_the_usage() -> None:
    result = run_cli(None, env=UNREACHABLE)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("usage: seedtest-analytics "), result.stderr
    for command in COMMANDS:
        assert f"    {command}" in result.stderr, command
    assert "Traceback" not in result.stderr


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert len(actions) == 1
    return dict(actions[0].choices)


def test_every_option_has_a_help_text_and_says_its_default() -> None:
    subcommands = _subcommands()
    assert set(COMMANDS) <= set(subcommands)
    for name, parser in subcommands.items():
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            label = f"{name} {'/'.join(action.option_strings) or action.dest}"
            assert action.help and len(action.help) >= 8, f"{label} has no help text"
            has_default = action.default not in (None, False) and not action.required
            if has_default:
                assert "default" in action.help, f"{label}: help does not give the default"


def test_docs_port_is_checked_before_anything_is_generated() -> None:
    for port in ("abc", "0", "70000"):
        result = run_cli(None, "docs", "--serve", "--port", port, env=UNREACHABLE)
        assert result.returncode == 2, result.stdout + result.stderr
        expected = (
            "a whole number (got 'abc')" if port == "abc"
            else f"between 1 and 65535 (got {port})"
        )
        assert result.stderr.strip().splitlines() == [f"[ERROR] --port must be {expected}"]
        assert "Running with dbt" not in result.stdout


def test_the_new_settings_are_checked_before_connecting() -> None:
    for name, value in [("SEEDTEST_FRESHNESS_HOURS", "a day"),
                        ("SEEDTEST_FRESHNESS_HOURS", "-1"),
                        ("SEEDTEST_LOCK_TIMEOUT_SECONDS", "abc"),
                        ("SEEDTEST_STATEMENT_TIMEOUT_SECONDS", "0")]:
        for command in ("run", "aggregate"):
            result = run_cli(None, command, "--date", "2025-11-01",
                             env={**UNREACHABLE, name: value})
            assert result.returncode == 2, result.stdout + result.stderr
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("[ERROR] ") and name in lines[0]
