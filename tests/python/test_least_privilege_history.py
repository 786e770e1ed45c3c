"""The operator guide's least-privilege grants, run verbatim, with the schema made for the job
(`create schema analytics authorization <role>`, no CREATE on the database): a full `run`
writes its run history and S.

The grants are the one ```sql block under the heading containing "Least-privilege grants" in
docs/operations.md, or under "Grants (least privilege)" in README.md while the guide has none.
"""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
from psycopg import sql

from conftest import REPO, run_cli
from seedtest_analytics.db.connection import ConnectionParams
from test_privileges import ANCHOR, WEEK, admin, job_params, job_role, seed

__all__ = ["job_role"]  # the fixture, used by name below


def grants_block() -> str:
    for path, heading in (
        (REPO / "docs" / "operations.md", r"^#+ .*Least-privilege grants.*$"),
        (REPO / "README.md", r"^#+ .*(Least-privilege grants|Grants \(least privilege\)).*$"),
    ):
        if not path.is_file():
            continue
        text = path.read_text()
        found = re.search(heading, text, re.M | re.I)
        if found is None:
            continue
        rest = text[found.end():]
        start = rest.index("```sql") + len("```sql")
        return rest[start:rest.index("```", start)]
    raise AssertionError("no least-privilege grants block in docs/operations.md or README.md")


def statements(block: str, role: str, dbname: str) -> list[str]:
    """The block's statements for `role` and `dbname`, the own-schema option chosen: no CREATE
    on the database, the schema created for the role (from the block's comment if it is one)."""
    uncommented = "\n".join(line.split("--", 1)[0] for line in block.splitlines())
    found = [" ".join(s.split()) for s in uncommented.split(";") if s.strip()]
    chosen = [s for s in found if not re.match(r"grant create on database", s, re.I)]
    if not any(re.match(r"create schema \w+ authorization", s, re.I) for s in chosen):
        assert re.search(r"create schema analytics authorization seedtest_job", block), block
        chosen.insert(1, "create schema analytics authorization seedtest_job")
    quoted_role = sql.Identifier(role).as_string(None)
    quoted_db = sql.Identifier(dbname).as_string(None)
    return [
        re.sub(r"\bon database seedtest\b", f"on database {quoted_db}",
               re.sub(r"\bseedtest_job\b", quoted_role, s))
        for s in chosen
    ]


def test_the_guides_grants_with_an_own_schema_write_history_and_s(
    fresh_db: ConnectionParams, job_role: tuple[str, str], tmp_path: Path
) -> None:
    role, password = job_role
    with admin(fresh_db) as conn:
        seed(conn)
        for statement in statements(grants_block(), role, fresh_db.dbname):
            conn.execute(statement)  # type: ignore[arg-type]
        row = conn.execute("select has_database_privilege(%s, current_database(), 'CREATE')",
                           (role,)).fetchone()
        assert row is not None and row[0] is False
    result = run_cli(job_params(fresh_db, role, password), "run", "--date", ANCHOR.isoformat(),
                     env={"ACTIVITY_TIMEZONE": "UTC", "DBT_TARGET_PATH": str(tmp_path / "t"),
                          "DBT_LOG_PATH": str(tmp_path / "logs")})
    output = f"exit {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr}"
    assert result.returncode == 0, output
    assert "[WARN]" not in result.stdout, output
    with psycopg.connect(**fresh_db.psycopg_kwargs()) as conn:
        history = conn.execute(
            "select command, status, exit_code, users_scored, state"
            " from analytics.seedtest_run_status").fetchall()
        scored = conn.execute("select count(*) from public.weekly_kpi where week_start = %s"
                              " and kpis ? 'S'", (WEEK,)).fetchone()
    assert history == [("run", "success", 0, 2, "success")]
    assert scored == (2,)
