"""No var's text is ever rendered as Jinja or put into SQL before it is validated, on any dbt
command, whether it comes from --vars or from the environment variable it falls back to.
Plain dbt is used (dbt's programmatic entry point, the code path
of the `dbt` executable), never the seedtest-analytics CLI, which validates values first.

What dbt does with a var (dbt-core 1.11, dbt/context/base.py `Var.get_rendered_var`): in a
model, macro, test or hook, `var(name)` renders a *string* given with --vars as a Jinja template
in the caller's context (run_query included) unless it holds no Jinja delimiter; non-strings,
var() defaults and env_var() values are returned as they are; in schema YAML (the sources'
`schema:`) var() returns the --vars value unrendered, but dbt then puts that schema into SQL
unescaped. The control case below shows the first point on this very database.

All the dbt invocations run in one Python process, against one database with a canary table:
- control: a var the project never validates, rendered by `compile --inline`, runs its
  payload (so the payloads below would run if anything rendered them); the same invocation
  runs the date rule of macros/vars/validators.sql (date_problem) over texts config.parse_date
  also judges;
- environment: for each command (parse, compile, build, docs generate, show, source
  freshness), every variable a var falls back to, and the profile's schema and database name,
  given a payload at once, after the control's parse (the partial-parsing path of the
  SOURCE_SCHEMA report); then SOURCE_SCHEMA alone with an SQL breakout, as reported, on
  compile and docs generate;
- --vars: for each command, every var given a Jinja payload that renders to a valid value
  (`{% do run_query(...) %}7`, `{{ '' if run_query(...) ... }}7`), so that nothing but the
  refusal stops dbt from running it; then every var given an SQL breakout (quotes) at once.
Each payload creates its own table if it ever runs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from conftest import REPO, create_database, drop_database, run_cli
from seedtest_analytics.config import parse_date
from seedtest_analytics.db.connection import ConnectionParams
from seedtest_analytics.errors import UsageError

VAR_ENV = {
    "anchor_date": "ANCHOR_DATE",
    "lookback_days": "AGG_LOOKBACK_DAYS",
    "include_theta": "AGG_INCLUDE_THETA",
    "activity_timezone": "ACTIVITY_TIMEZONE",
    "inactivity_threshold_days": "INACTIVITY_THRESHOLD_DAYS",
    "kpi_lookback_days": "KPI_LOOKBACK_DAYS",
    "default_target": "METRICS_DEFAULT_TARGET",
    "source_schema": "SOURCE_SCHEMA",
    "map_user_ids": "MAP_USER_IDS",
    "attempts_from_exam_results": "ATTEMPTS_FROM_EXAM_RESULTS",
}
TARGET_SCHEMA_ENV = "SEEDTEST_DBT_SCHEMA"
DATABASE_ENV = "SEEDTEST_PGDATABASE"
COMMANDS: dict[str, list[str]] = {
    "parse": ["parse"],
    "compile": ["compile"],
    "build": ["build"],
    "docs": ["docs", "generate"],
    "show": ["show", "--select", "inactive_users"],
    "freshness": ["source", "freshness"],
}
# TABLE is replaced by the table the payload creates if it ever runs, VALUE by a valid value.
# The Jinja ones render to VALUE where dbt has no run_query (generic tests while parsing).
PAYLOADS = {
    "do": (
        '{% if run_query is defined %}{% do run_query("create table public.TABLE (); commit") %}'
        "{% endif %}VALUE"
    ),
    "expr": (
        "{{ '' if run_query is not defined or run_query(\"create table public.TABLE ();"
        " commit\") is none else '' }}VALUE"
    ),
    "quote": "x'; create table public.TABLE (); commit; select 'x' ilike 'y",
    "dquote": 'x"; create table public.TABLE (); commit; select "x',
}
VALID = {
    "anchor_date": "2025-11-01", "lookback_days": "7", "include_theta": "false",
    "activity_timezone": "UTC", "inactivity_threshold_days": "7", "kpi_lookback_days": "30",
    "default_target": "0.0", "source_schema": "public", "map_user_ids": "true",
    "attempts_from_exam_results": "false",
}
REFUSED = "must be plain text (letters, digits and _ + - . / only); nothing was rendered or run"
DATE_TEXTS = [
    "2025-11-01", "1900-01-01", "1899-12-31", "0001-01-01", "0000-01-01", "1900-02-29",
    "2000-02-29", "2024-02-29", "2023-02-29", "2025-04-31", "2025-04-30", "2025-12-31",
    "2025-13-01", "2025-00-10", "2025-01-00", "9999-12-31", "1899-02-30", "  2025-11-01 ",
    "\t2025-11-01\n", "2025-1-01", "20251101", "2025-11-01T00:00", "2025/11/01", "", "abc",
    "\u0662\u0660\u0662\u0665-\u0661\u0661-\u0660\u0661", "\uff12\uff10\uff12\uff15-11-01",
    "+2025-11-01", "12025-11-01", "1900-1-1",
]

_DRIVER = """
import json, os, sys, time

def main():
    from dbt.cli.main import dbtRunner
    spec = json.loads(sys.argv[1])
    base = dict(os.environ)
    for case in spec["cases"]:
        args = [*case["args"], "--project-dir", spec["project"],
                "--profiles-dir", spec["profiles"]]
        if case["vars"] is not None:
            args += ["--vars", json.dumps(case["vars"])]
        os.environ.clear()
        os.environ.update(base)
        os.environ.update(case["env"])
        started = time.monotonic()
        try:
            result = dbtRunner().invoke(args)
        finally:
            os.environ.clear()
            os.environ.update(base)
        compiled = None
        results = getattr(result.result, "results", None) or []
        if case.get("want_compiled") and results:
            compiled = results[0].node.compiled_code
        print("CASE-RESULT " + json.dumps({
            "case": case["name"], "success": bool(result.success),
            "exception": type(result.exception).__name__ if result.exception else None,
            "message": str(result.exception or ""), "compiled": compiled,
            "seconds": round(time.monotonic() - started, 2),
        }), flush=True)

if __name__ == "__main__":  # dbt may start helper processes that import __main__
    main()
"""


def payload(kind: str, table: str, value: str = "7") -> str:
    return PAYLOADS[kind].replace("TABLE", table).replace("VALUE", value)


def table_for(case: str, name: str) -> str:
    return f"pwned_{case}_{name.lower()}"[:63]


def rotated(case: str, offset: int, names: list[str], kinds: list[str]) -> dict[str, str]:
    """A payload per name, the kinds rotating over the names (and over the cases by offset)."""
    return {
        name: payload(
            kinds[(index + offset) % len(kinds)], table_for(case, name), VALID.get(name, "7")
        )
        for index, name in enumerate(names)
    }


def clean_env(params: ConnectionParams, target: Path, logs: Path) -> dict[str, str]:
    """The environment of plain dbt against params' database, without any project variable."""
    env = {
        key: value for key, value in os.environ.items()
        if key not in VAR_ENV.values() and key not in ("DATABASE_URL", TARGET_SCHEMA_ENV)
        and not key.startswith(("AGG_", "METRICS_", "KPI_", "INACTIVITY_", "SEEDTEST_"))
    }
    env.update(params.dbt_env())
    env.update(
        DBT_TARGET_PATH=str(target), DBT_LOG_PATH=str(logs),
        DBT_SEND_ANONYMOUS_USAGE_STATS="false", DBT_USE_COLORS="false",
        **{TARGET_SCHEMA_ENV: "analytics"},
    )
    return env


# The vars of the control, also given to the environment cases (the models never read them),
# so those go through partial parsing against the control's manifest, as in the report.
CONTROL_VARS = {"probe": payload("do", "pwned_control"), "date_texts": DATE_TEXTS}
CONTROL_SQL = (
    "{{ var('probe') }}\n"
    "{% set out = {} %}{% for text in var('date_texts') %}"
    "{% do out.update({text: date_problem(text | trim)}) %}{% endfor %}{{ tojson(out) }}"
)


def cases() -> list[dict[str, Any]]:
    env_names = [*VAR_ENV.values(), TARGET_SCHEMA_ENV, DATABASE_ENV]
    made: list[dict[str, Any]] = [{
        "name": "control", "env": {}, "want_compiled": True, "vars": CONTROL_VARS,
        "args": ["compile", "--inline", CONTROL_SQL],
    }]
    for offset, (command, args) in enumerate(COMMANDS.items()):
        made.append({
            "name": f"env_{command}", "args": args, "vars": CONTROL_VARS,
            "env": rotated(f"e{offset}", offset, env_names, list(PAYLOADS)),
        })
    var_env_names = [name for name in VAR_ENV.values() if name != "SOURCE_SCHEMA"]
    for offset, (command, args) in enumerate(COMMANDS.items()):
        # the vars' environment only (the profile valid; SOURCE_SCHEMA has its own cases)
        made.append({
            "name": f"env_vars_{command}", "args": args, "vars": CONTROL_VARS,
            "env": rotated(f"n{offset}", offset, var_env_names, list(PAYLOADS)),
        })
    for command in ("compile", "docs"):
        made.append({
            "name": f"env_source_schema_{command}", "args": COMMANDS[command],
            "vars": CONTROL_VARS,
            "env": {"SOURCE_SCHEMA": payload("quote", f"pwned_source_schema_{command}")},
        })
    made.append({
        "name": "yaml_schema", "args": ["parse"], "vars": CONTROL_VARS,
        "env": {"SOURCE_SCHEMA": "Public"},
    })
    for offset, (command, args) in enumerate(COMMANDS.items()):
        made.append({
            "name": f"vars_{command}", "args": args, "env": {},
            "vars": rotated(f"v{offset}", offset, list(VAR_ENV), ["do", "expr"]),
        })
    made.append({
        "name": "vars_quotes", "args": COMMANDS["build"], "env": {},
        "vars": rotated("q", 0, list(VAR_ENV), ["quote", "dquote"]),
    })
    return made


@pytest.fixture(scope="module")
def database(server_params: ConnectionParams) -> Iterator[ConnectionParams]:
    params = create_database(server_params)
    with psycopg.connect(**params.psycopg_kwargs(), autocommit=True) as conn:
        conn.execute("create table public.canary (id int)")
        conn.execute("insert into public.canary values (1)")
    yield params
    drop_database(server_params, params)


@pytest.fixture(scope="module")
def outcomes(database: ConnectionParams, tmp_path_factory: pytest.TempPathFactory
             ) -> dict[str, dict[str, Any]]:
    work = tmp_path_factory.mktemp("var_injection")
    driver = work / "driver.py"
    driver.write_text(_DRIVER)
    spec = {"project": str(REPO), "profiles": str(REPO / "profiles"), "cases": cases()}
    result = subprocess.run(
        [sys.executable, str(driver), json.dumps(spec)], cwd=work,
        env=clean_env(database, work / "target", work / "logs"),
        capture_output=True, text=True, check=False,
    )
    found = {
        data["case"]: data
        for data in (
            json.loads(line.removeprefix("CASE-RESULT "))
            for line in result.stdout.splitlines() if line.startswith("CASE-RESULT ")
        )
    }
    assert set(found) == {case["name"] for case in spec["cases"]}, (
        result.stdout[-4000:] + result.stderr[-4000:]
    )
    print({name: data["seconds"] for name, data in found.items()})
    return found


def relations(params: ConnectionParams) -> tuple[list[str], list[str], int]:
    """(pwned_* tables anywhere, schemas other than the system's and public, canary rows)."""
    with psycopg.connect(**params.psycopg_kwargs(), autocommit=True) as conn:
        pwned = [r for (r,) in conn.execute(
            "select relname::text from pg_class where relname like 'pwned%' order by 1")]
        schemas = [s for (s,) in conn.execute(
            "select nspname::text from pg_namespace where nspname not in ('public',"
            " 'information_schema') and nspname not like 'pg\\_%' order by 1")]
        row = conn.execute("select count(*) from public.canary").fetchone()
    return pwned, schemas, int(row[0]) if row else 0


def test_the_payloads_run_when_dbt_renders_a_var(outcomes: dict[str, dict[str, Any]]) -> None:
    """The control: a var nobody validates, used as `{{ var('probe') }}`, is rendered by dbt and
    its run_query runs (then the var reads as `7`). This is the hole the project closes."""
    control = outcomes["control"]
    assert control["success"], control["message"]
    assert control["compiled"] is not None
    assert control["compiled"].splitlines()[0] == "7", control["compiled"]


def refused_names(outcome: dict[str, Any]) -> list[str]:
    """What the one refusal line names, after dbt stopped with a compilation error."""
    assert not outcome["success"], f"{outcome['case']}: dbt did not stop"
    # dbt raises a compilation error while parsing; while running, wrapped in a runtime error
    assert outcome["exception"] == "CompilationError" or (
        outcome["exception"] == "DbtRuntimeError" and "Compilation Error" in outcome["message"]
    ), outcome
    message = outcome["message"]
    named = re.search(r"^\s*(.*) " + re.escape(REFUSED) + "$", message, re.M)
    assert named is not None, message
    assert "pwned" not in message, "the error line must not echo the payload"
    return named.group(1).split(", ")


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_hostile_profile_is_refused_while_parsing(
    outcomes: dict[str, dict[str, Any]], command: str
) -> None:
    """Every variable holding a payload: each dbt command stops while parsing, with one line
    naming the target schema and the database name (the profile's). The vars' environment
    variables are not read while dbt parses (a value read then is tracked by dbt, which
    re-parses every file that read it when it changes: every night, for the anchor)."""
    assert refused_names(outcomes[f"env_{command}"]) == [
        f"{TARGET_SCHEMA_ENV} (the target schema)", f"{DATABASE_ENV} (the database name)",
    ]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_var_from_the_environment_is_refused_before_anything_runs(
    outcomes: dict[str, dict[str, Any]], command: str
) -> None:
    """The vars' environment variables holding payloads (the profile valid): the first
    compilation (the on-run-start hook, or the first model or test compiled) stops dbt with one
    line naming every one of them. `dbt parse` reads none of them, renders nothing and runs no
    SQL (test_nothing_ran)."""
    outcome = outcomes[f"env_vars_{command}"]
    if command == "parse":  # compiles no model, test or hook
        assert outcome["success"], outcome["message"]
        return
    assert refused_names(outcome) == [n for n in VAR_ENV.values() if n != "SOURCE_SCHEMA"]


@pytest.mark.parametrize("command", ["compile", "docs"])
def test_source_schema_from_the_environment_is_refused_after_a_parse(
    outcomes: dict[str, dict[str, Any]], command: str
) -> None:
    """The sources' YAML checks SOURCE_SCHEMA itself: the parse stops, naming the rule."""
    outcome = outcomes[f"env_source_schema_{command}"]
    assert not outcome["success"]
    assert outcome["exception"] == "ParsingError", outcome
    assert "SOURCE_SCHEMA (or var source_schema) must be a lowercase identifier" in (
        outcome["message"]
    )
    assert "pwned" not in outcome["message"], "the error line must not echo the payload"


@pytest.mark.parametrize("case", [f"vars_{command}" for command in COMMANDS] + ["vars_quotes"])
def test_every_var_given_with_vars_is_refused_unrendered(
    outcomes: dict[str, dict[str, Any]], case: str
) -> None:
    """Each dbt command stops while parsing, with one line naming every var holding a payload:
    none was rendered (a rendered one would read as a valid value and run its query)."""
    assert refused_names(outcomes[case]) == [f"var {name}" for name in VAR_ENV]


def test_nothing_ran(outcomes: dict[str, dict[str, Any]], database: ConnectionParams) -> None:
    """No payload ran on any command: only the control's table exists, the canary is intact,
    and dbt created no schema but its (valid) target schema, which holds nothing."""
    pwned, schemas, canary = relations(database)
    assert pwned == ["pwned_control"]
    assert schemas in ([], ["analytics"])
    with psycopg.connect(**database.psycopg_kwargs(), autocommit=True) as conn:
        row = conn.execute(
            "select count(*) from pg_class as c join pg_namespace as n on n.oid = c.relnamespace"
            " where n.nspname = 'analytics'"
        ).fetchone()
    assert row == (0,)
    assert canary == 1


def test_a_source_schema_of_plain_characters_that_is_no_identifier_is_refused(
    outcomes: dict[str, dict[str, Any]]
) -> None:
    """SOURCE_SCHEMA=Public gets past the character scan; after the control's parse, dbt
    re-renders what depends on it (the models and the sources YAML, which checks the schema
    itself) and stops the parse before any SQL."""
    outcome = outcomes["yaml_schema"]
    assert not outcome["success"]
    message = outcome["message"]
    assert (
        "var source_schema must be a lowercase identifier (got Public)" in message
        or "SOURCE_SCHEMA (or var source_schema) must be a lowercase identifier" in message
    ), message


def test_only_the_validation_macros_read_vars() -> None:
    """var() and env_var() of the project vars appear only in macros/vars/var_text.sql, the
    sources' schema and the profile: a model or test calling var() itself would have dbt
    render the var's text."""
    allowed = {
        REPO / "macros" / "vars" / "var_text.sql",
        REPO / "models" / "staging" / "seedtest" / "_seedtest__sources.yml",
        REPO / "profiles" / "profiles.yml",
        # SEEDTEST_LOCK_*: set by the CLI, each matched against a strict pattern before use.
        REPO / "macros" / "hooks" / "run_lock.sql",
        # SEEDTEST_DRY_RUN: set by the CLI, only compared with 'true' (never rendered).
        REPO / "macros" / "hooks" / "dry_run.sql",
    }
    call = re.compile(r"\b(?:var|env_var)\s*\(\s*['\"]")
    offenders = []
    files = [REPO / "dbt_project.yml", *REPO.glob("selectors.yml")]
    for folder in ("models", "macros", "tests/dbt", "analyses", "snapshots", "seeds"):
        files += [p for p in (REPO / folder).rglob("*") if p.suffix in (".sql", ".yml", ".md")]
    for path in files:
        if path in allowed or not path.is_file():
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if call.search(line) and not line.lstrip().startswith("#"):
                offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert offenders == [], "\n".join(offenders)


# --- the date rule --------------------------------------------------------------------------

def python_problem(text: str) -> str:
    try:
        parse_date("x", text)
    except UsageError as exc:
        message = str(exc)
        for problem in ("a date as YYYY-MM-DD", "not a valid date", "on or after 1900-01-01"):
            if problem in message:
                return problem.replace("not a valid date", "a valid calendar date")
        raise AssertionError(f"unexpected message {message!r}") from None
    return ""


def test_cli_and_dbt_apply_the_same_date_rule(outcomes: dict[str, dict[str, Any]]) -> None:
    """macros/vars/validators.sql's date_problem and config.parse_date agree on every text: which
    are dates, and what is wrong with the others (1899-12-31 and 0001-01-01 are refused by
    both, before connecting on the CLI's side)."""
    outcome = outcomes["control"]
    assert outcome["success"], outcome["message"]
    in_dbt = json.loads(outcome["compiled"].splitlines()[1])
    in_python = {text: python_problem(text) for text in DATE_TEXTS}
    assert in_dbt == in_python
    assert in_python["1899-12-31"] == "on or after 1900-01-01"
    assert in_python["1900-01-01"] == "" and in_python["  2025-11-01 "] == ""
    assert in_python["2023-02-29"] == "a valid calendar date"
    assert in_python["\uff12\uff10\uff12\uff15-11-01"] == "a date as YYYY-MM-DD"


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["aggregate", "--date", "1899-12-31"], {}),
        (["run"], {"ANCHOR_DATE": "0001-01-01"}),
        (["backfill", "--start", "1899-06-01", "--end", "1900-01-05"], {}),
    ],
    ids=["date-flag", "anchor-env", "backfill-start"],
)
def test_dates_before_1900_stop_the_cli_before_connecting(
    args: list[str], env: dict[str, str]
) -> None:
    """Exit 2 and one line, with a DATABASE_URL nobody listens on: had the CLI connected (or
    started dbt), the exit code would be 1."""
    result = run_cli(
        None, *args, env={**env, "DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none"}
    )
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("[ERROR]"), result.stderr
    assert "on or after 1900-01-01" in lines[0], lines
