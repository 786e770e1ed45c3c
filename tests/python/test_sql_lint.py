"""The SQL style guide (.sqlfluff: postgres dialect, dbt templater) holds for every model and
data test. The dbt templater compiles against a real database, so it gets a fresh one."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import REPO
from seedtest_analytics.db.connection import ConnectionParams
from seedtest_analytics.dbt.runner import dbt_env


def test_sqlfluff_reports_no_violations(fresh_db: ConnectionParams) -> None:
    env = {**os.environ, **dbt_env(fresh_db)}
    result = subprocess.run(
        [sys.executable, "-m", "sqlfluff", "lint", "models", "tests/dbt", "--format", "json",
         "--nofail"],
        cwd=REPO, env=env, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    files = json.loads(result.stdout)
    linted = {entry["filepath"] for entry in files}
    assert any(path.endswith("features_topic_daily.sql") for path in linted), linted
    problems = [
        f"{entry['filepath']}:{v['start_line_no']} {v['code']} {v['description']}"
        for entry in files
        for v in entry["violations"]
    ]
    assert problems == [], "\n".join(problems)
    skipped = [line for line in result.stderr.splitlines() if "Skipped file" in line]
    assert skipped == [], "\n".join(skipped)
