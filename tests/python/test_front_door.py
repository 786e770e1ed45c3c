"""The documentation a newcomer reads: a short README that starts with the two commands and
lists every command, links into docs/ that resolve, each configuration variable listed once
(the generated docs/configuration.md), the operator guide's grants as one runnable block, and
no citation of a document the repository does not hold."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import REPO
from seedtest_analytics.cli import build_parser
from seedtest_analytics.config import SETTINGS
from seedtest_dev import configdoc

README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))
MARKDOWN = [README, REPO / "deploy" / "README.md", *DOCS]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    return {_slug(m) for m in re.findall(r"^#+ (.+)$", _text(path), re.M)}


def test_readme_is_short_and_starts_with_the_two_commands() -> None:
    size = README.stat().st_size
    assert 6_000 <= size <= 8_192, f"README.md is {size} bytes; keep it 6-8 KB, details in docs/"
    commands = [line.split("#")[0].strip() for line in _text(README).splitlines()
                if line.startswith("    ")]
    assert commands[:2] == ["bash scripts/demo.sh", "bash scripts/test.sh"], commands[:2]
    first_paragraph = _text(README).split("\n\n")[2]
    assert first_paragraph.startswith("seedtest-analytics turns"), first_paragraph[:80]


def test_readme_lists_every_command() -> None:
    parser = build_parser()
    (commands,) = [a for a in parser._actions if a.dest == "command"]
    names = set(getattr(commands, "choices", {}))
    assert {"run", "backtest", "train-churn", "init-db"} <= names
    table = {
        m.group(1) for m in re.finditer(r"^\| `seedtest-analytics ([a-z-]+)", _text(README), re.M)
    }
    assert names <= table, f"missing from the README's commands table: {sorted(names - table)}"


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(REPO)))
def test_links_resolve(path: Path) -> None:
    for target in LINK.findall(_text(path)):
        if re.match(r"[a-z]+://", target):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        assert linked.exists(), f"{path.name} links to {target}, which does not exist"
        if anchor and linked.suffix == ".md":
            assert anchor in _anchors(linked), f"{path.name}: no #{anchor} in {linked.name}"


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(REPO)))
def test_no_citations_a_newcomer_cannot_follow(path: Path) -> None:
    text = _text(path)
    assert not re.search(r"\bSPEC\b", text), path
    assert not re.search(r"\bissues? #?\d+|(?<![\w&])#\d+\b", text, re.I), path


def test_each_variable_is_listed_once_in_the_generated_file() -> None:
    """A table row per variable lives only in docs/configuration.md; the rest link there."""
    names = {var.env for var in SETTINGS}
    for path in MARKDOWN:
        if path.name == "configuration.md":
            continue
        rows = set(re.findall(r"^\|\s*`([A-Z][A-Z0-9_]+)`\s*\|", _text(path), re.M))
        assert not rows & names, f"{path.name} lists settings again: {sorted(rows & names)}"
    assert configdoc.main(check=True) == 0
    assert not (REPO / "BENCHMARKS.md").exists()


def test_benchmarks_keep_one_summary_table() -> None:
    text = _text(REPO / "docs" / "benchmarks.md")
    assert len(re.findall(r"^\|---", text, re.M)) == 1
    assert "/tmp/" not in text  # no run log with its temporary paths


def test_operator_guide_grants_are_one_least_privilege_block() -> None:
    text = _text(REPO / "docs" / "operations.md")
    (start,) = [m.end() for m in re.finditer(r"^##+ .*Least-privilege grants.*$", text, re.M)]
    section = text[start:]
    section = section[: m.start()] if (m := re.search(r"^## ", section, re.M)) else section
    blocks = re.findall(r"```sql\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the grants are one sql block, run as they are by a test"
    grants = blocks[0].lower()
    assert "create schema analytics authorization seedtest_job" in grants
    assert "grant select, insert, update on public.weekly_kpi to seedtest_job" in grants
    assert "grant select on public.exam_results" in grants
    assert not re.search(r"grant [^;]*\bcreate\b[^;]* on database", grants), grants
    assert not re.search(r"\b(delete|truncate|superuser|all privileges)\b", grants), grants
