"""The operator guide (docs/operations.md), followed as written: its marked blocks
(`<!-- operator-path: STEP -->` before a ```bash or ```sql block) run in the guide's order,
verbatim, against a PostgreSQL of their own, and each step's outcome is checked in the database.

- install: the runtime alone, into a new virtualenv (`SEEDTEST_VENV`), from a copy of the
  checkout; every later command is that virtualenv's `seedtest-analytics`, so a runtime
  dependency missing from pyproject.toml or requirements.lock fails here;
- grants: the SQL block, in psql as the database owner, for the guide's role `seedtest_job`
  on the guide's database `seedtest`, where PUBLIC's default rights were taken away first;
- first night: dry run and run as that role; S lands for the users the independent reference
  (ps_reference, from the raw rows) finds inactive, and the metrics reach a Pushgateway
  stand-in (a local HTTP server);
- run history (the SQL block, in psql as the job) and `status`;
- a failed night (the test's own: SELECT on a source revoked) seen in the history, in `status`
  and in the pushed metrics, which make the "no success for 26 h" rule of
  deploy/k8s/prometheusrule.yaml fire 26 h after the last success (the rule's expression is
  evaluated here in Python over the Pushgateway's state: promtool is not installed);
- retry (the cause fixed): dbt-retry of the failed nodes, then the P/S step;
- rebuild: days deleted from features_topic_daily, older than any night's window, come back.

Each block runs in `bash` with `set -euo pipefail` and the environment the blocks before it
left (as in one terminal), plus what the guide tells the reader to set. A step missing from the
guide, or a marker without its block, fails the test.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import yaml
from psycopg import sql

import ps_reference as ps
from conftest import REPO, SESSION_TIMEZONE, run_cli
from seedtest_analytics.db.app_schema import init_db
from seedtest_analytics.db.connection import ConnectionParams
from seedtest_dev import embedded
from seedtest_dev.synthetic import generate_demo
from test_operations import _Gateway, gateway, metric

__all__ = ["gateway"]  # the fixture, used by name below

GUIDE = REPO / "docs" / "operations.md"
STEPS = ("install", "grants", "first-night", "history", "status", "retry", "rebuild")
MARKED = re.compile(r"^<!-- operator-path: ([a-z-]+) -->\n```(bash|sql)\n(.*?)^```$", re.M | re.S)
ROLE, DATABASE = "seedtest_job", "seedtest"  # the names the guide's grants use
PASSWORD = "job-Pw-4711"
# Time zones whose midnights are hours apart: the test takes the one farthest from midnight,
# so "yesterday" cannot change while it runs.
ZONES = ("Asia/Seoul", "Asia/Kolkata", "Europe/London", "America/Chicago")
SUMMARY = re.compile(r"^\[INFO\] Summary: processed=(\d+), failed=(\d+), threshold=7 days", re.M)


def guide_blocks() -> dict[str, tuple[str, str]]:
    """step -> (language, block), each step once and in the order of STEPS."""
    text = GUIDE.read_text(encoding="utf-8")
    found = [(m.group(1), m.group(2), m.group(3)) for m in MARKED.finditer(text)]
    assert text.count("<!-- operator-path:") == len(found), "a marker without its block"
    assert [name for name, _, _ in found] == list(STEPS), [name for name, _, _ in found]
    return {name: (language, block) for name, language, block in found}


def activity_zone() -> str:
    def distance(zone: str) -> float:
        now = dt.datetime.now(ZoneInfo(zone))
        hours = now.hour + now.minute / 60
        return min(hours, 24 - hours)

    return max(ZONES, key=distance)


def checkout_copy(dest: Path) -> Path:
    """What a checkout of this working tree holds (tracked and new files, not ignored ones)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=REPO, capture_output=True, check=True)
    for name in listed.stdout.decode().split("\0"):
        source = REPO / name
        if name and source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            (dest / name).write_bytes(source.read_bytes())
    return dest


@dataclass
class Terminal:
    """One reader's shell: each block runs with the environment the previous ones left."""

    env: dict[str, str]
    cwd: Path
    state: Path

    def run(self, script: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        wrapped = f"set -euo pipefail\n{script}\nenv -0 > {self.state}\n"
        result = subprocess.run(["bash", "-c", wrapped], env=self.env, cwd=self.cwd,
                                capture_output=True, text=True, check=False)
        shown = f"exit {result.returncode}\n{result.stdout[-6000:]}\nstderr:\n{result.stderr}"
        assert result.returncode == code, f"{script}\n{shown}"
        assert "Traceback" not in result.stdout + result.stderr, shown
        if result.returncode == 0:
            pairs = (item.split("=", 1) for item in self.state.read_text().split("\0") if item)
            self.env = {k: v for k, v in pairs if k not in ("_", "SHLVL", "OLDPWD", "PWD")}
        return result


@dataclass
class Database:
    owner: ConnectionParams
    job: ConnectionParams
    psql_path: Path

    def rows(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(**self.owner.psycopg_kwargs(), autocommit=True) as conn:
            return [tuple(r) for r in conn.execute(query, args).fetchall()]  # type: ignore[arg-type]

    def execute(self, statement: str) -> None:
        with psycopg.connect(**self.owner.psycopg_kwargs(), autocommit=True) as conn:
            conn.execute(statement)  # type: ignore[arg-type]

    def psql(self, params: ConnectionParams, *args: str, script: str = ""
             ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([str(self.psql_path), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                               "-d", params.to_url(), *args], input=script,
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"{args} {script}\n{done.stdout}\n{done.stderr}"
        return done

    def queries(self, params: ConnectionParams, block: str) -> list[list[dict[str, str]]]:
        """Each query of an SQL block (no comment in it), run in psql: its rows as dicts."""
        assert "--" not in block and "/*" not in block, block
        return [list(csv.DictReader(io.StringIO(self.psql(params, "--csv", "-c", query).stdout)))
                for query in block.split(";") if query.strip()]

    def history(self) -> list[tuple[Any, ...]]:
        return self.rows("select command, dry_run, status, exit_code, error_class, error,"
                         " anchor_date, users_scored, models_built"
                         " from analytics.seedtest_run_history order by started_at")


def kpis(db: Database, week: dt.date) -> dict[str, dict[str, Any]]:
    return {user: value for user, value in db.rows(
        "select user_id, kpis from public.weekly_kpi where week_start = %s", week)}


def pushed(handler: type[_Gateway], command: str) -> list[str]:
    return [body for method, path, body in handler.received
            if method == "POST" and path == f"/metrics/job/seedtest-analytics/command/{command}"]


def gateway_state(handler: type[_Gateway]) -> dict[tuple[str, str], dict[str, float]]:
    """What a Pushgateway holds after these pushes: per group, a POST (pushadd) replaces the
    metrics it names and keeps the others. {(group path, metric name): {labels: value}}."""
    state: dict[tuple[str, str], dict[str, float]] = {}
    for method, path, body in handler.received:
        assert method == "POST", method
        samples: dict[str, dict[str, float]] = {}
        for line in body.splitlines():
            match = re.fullmatch(r"([a-z_]+)\{(.*)\} (\S+)", line)
            if match:
                samples.setdefault(match.group(1), {})[match.group(2)] = float(match.group(3))
        for name, series in samples.items():
            state[(path, name)] = series
    return state


def no_success_alert_fires(state: dict[tuple[str, str], dict[str, float]], at: float) -> bool:
    """SeedtestAnalyticsNoSuccess26h of deploy/k8s/prometheusrule.yaml at time `at`, over the
    gateway's state. Its expression must keep the one form evaluated here."""
    rules = yaml.safe_load((REPO / "deploy" / "k8s" / "prometheusrule.yaml").read_text())
    [rule] = [r for g in rules["spec"]["groups"] for r in g["rules"]
              if r["alert"] == "SeedtestAnalyticsNoSuccess26h"]
    form = re.fullmatch(r"time\(\) - max by \(command\) \(([a-z_]+)\{command=\"([a-z-]+)\"\}\)"
                        r"\s*>\s*(\d+) \* (\d+)", " ".join(rule["expr"].split()))
    assert form, rule["expr"]
    name, command, hours, seconds = form.groups()
    values = [value for (_, metric_name), series in state.items() if metric_name == name
              for labels, value in series.items() if f'command="{command}"' in labels]
    assert values, f"no {name}{{command={command!r}}} in the gateway"
    return at - max(values) > int(hours) * int(seconds)


def test_the_operator_guide_as_written(gateway: tuple[str, type[_Gateway]],
                                       tmp_path: Path) -> None:
    blocks = guide_blocks()
    url, handler = gateway
    zone = activity_zone()
    anchor = dt.datetime.now(ZoneInfo(zone)).date() - dt.timedelta(days=1)
    week = anchor - dt.timedelta(days=anchor.weekday())
    pgdata = Path(tempfile.mkdtemp(prefix="seedtest-test-operator-"))
    with embedded.throwaway_server(pgdata) as server:
        owner = server.params(DATABASE)
        with psycopg.connect(**server.params("postgres").psycopg_kwargs(),
                             autocommit=True) as conn:
            conn.execute(f"create database {DATABASE}")  # type: ignore[arg-type]
            conn.execute(sql.SQL("alter database {} set timezone to {}").format(
                sql.Identifier(DATABASE), sql.Literal(SESSION_TIMEZONE)))
        init_db(owner)  # the application's database, with its data
        with psycopg.connect(**owner.psycopg_kwargs(), autocommit=True) as conn:
            generate_demo(conn, users=40, days=45, seed=20, end_date=anchor)
            conn.execute(sql.SQL("create role {} login password {}").format(
                sql.Identifier(ROLE), sql.Literal(PASSWORD)))
            # nothing borrowed from PUBLIC's defaults: the guide's grants must be enough
            conn.execute(f"revoke all on database {DATABASE} from public")  # type: ignore[arg-type]
            conn.execute("revoke all on schema public from public")
            conn.execute("revoke execute on function public.app_user_uuid(text) from public")
        job = ConnectionParams(host=owner.host, port=owner.port, user=ROLE, password=PASSWORD,
                               dbname=DATABASE)
        db = Database(owner, job, embedded.psql_path())
        walk(blocks, db, tmp_path, url, handler, zone, anchor, week)


def reader_environment(tmp_path: Path) -> dict[str, str]:
    """The reader's shell before the guide: none of the project's settings, no dev venv."""
    dev_bin = str(REPO / ".venv" / "bin")
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("SEEDTEST_", "DBT_", "AGG_", "METRICS_", "KPI_", "INACTIVITY_",
                                  "ANCHOR_", "PG", "VIRTUAL_ENV", "PYTHON"))
           and key not in ("DATABASE_URL", "SOURCE_SCHEMA", "ACTIVITY_TIMEZONE")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if p and Path(p).resolve() != Path(dev_bin).resolve())
    env["SEEDTEST_VENV"] = str(tmp_path / "runtime-venv")
    return env


def walk(blocks: dict[str, tuple[str, str]], db: Database, tmp_path: Path, url: str,
         handler: type[_Gateway], zone: str, anchor: dt.date, week: dt.date) -> None:
    checkout = checkout_copy(tmp_path / "checkout")
    term = Terminal(reader_environment(tmp_path), checkout, tmp_path / "env-state")

    # --- install: the runtime alone, from the checkout ------------------------------------
    started = time.monotonic()
    term.run(blocks["install"][1])
    install_seconds = time.monotonic() - started
    venv = Path(term.env["SEEDTEST_VENV"])
    where = subprocess.run(["bash", "-c", "command -v seedtest-analytics"], env=term.env,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert where == str(venv / "bin" / "seedtest-analytics"), where
    dev_tools = subprocess.run([str(venv / "bin" / "python"), "-c", "import seedtest_dev"],
                               capture_output=True, text=True, check=False)
    assert dev_tools.returncode != 0, "the runtime install holds the development tools"
    assert not (venv / "bin" / "pytest").exists()
    # From here on the reader is anywhere but the checkout: SEEDTEST_PROJECT_DIR finds it.
    term.cwd = tmp_path / "elsewhere"
    term.cwd.mkdir()
    print(f"runtime install: {install_seconds:.0f} s")

    # --- grants, as the database owner --------------------------------------------------------
    language, grants = blocks["grants"]
    assert language == "sql"
    db.psql(db.owner, "-f", "-", script=grants)  # as written, comments and all
    [(can_create, schema_owner, reads, deletes)] = db.rows(
        "select has_database_privilege(%s, current_database(), 'CREATE'),"
        " (select nspowner::regrole::text from pg_namespace where nspname = 'analytics'),"
        " has_table_privilege(%s, 'public.exam_results', 'SELECT'),"
        " has_table_privilege(%s, 'public.weekly_kpi', 'DELETE')", ROLE, ROLE, ROLE)
    assert (can_create, schema_owner, reads, deletes) == (False, ROLE, True, False)

    # --- the first night, as the job's role ---------------------------------------------------
    term.env.update(DATABASE_URL=db.job.to_url(), ACTIVITY_TIMEZONE=zone,
                    SEEDTEST_PUSHGATEWAY_URL=url)
    kpi_before = {(u, week): k for u, k in kpis(db, week).items()}
    first_push_at = time.time()
    first = term.run(blocks["first-night"][1])
    assert len(SUMMARY.findall(first.stdout)) == 2, first.stdout  # the dry run's and the run's
    history = db.history()
    assert [(c, dry, status, code) for c, dry, status, code, *_ in history] == [
        ("run", True, "success", 0), ("run", False, "success", 0)]
    assert {row[6] for row in history} == {anchor}
    # P and S for exactly the users the reference finds inactive, from the raw rows
    with psycopg.connect(**db.owner.psycopg_kwargs()) as conn:
        expected = ps.compute(ps.load_sources(conn), anchor=anchor, timezone=zone)
    assert expected.inactive and expected.scores
    assert history[-1][7] == len(expected.scores)
    want, not_object = ps.expected_weekly_kpi(kpi_before, expected)
    assert not_object == []
    after_first = kpis(db, week)
    scored = {user for user, k in after_first.items() if k.get("S_as_of") == anchor.isoformat()}
    assert scored == set(expected.scores)
    for user in scored:
        for key in ("P", "S"):
            assert abs(after_first[user].get(key, 0) - want[(user, week)].get(key, 0)) < 1e-12
    owners = db.rows("select distinct tableowner from pg_tables where schemaname = 'analytics'")
    assert owners == [(ROLE,)]  # the job's role built everything there
    [run_body] = pushed(handler, "run")  # the dry run pushes nothing
    command = {"command": "run"}
    last_success = metric(run_body, "seedtest_last_success_timestamp_seconds", **command)
    assert last_success >= first_push_at
    assert metric(run_body, "seedtest_users_scored", **command) == len(expected.scores)
    assert metric(run_body, "seedtest_exit_class", exit_class="success", **command) == 1

    # --- seeing it: the run history, and status -------------------------------------------
    language, history_sql = blocks["history"]
    assert language == "sql"
    nights, by_anchor = db.queries(db.job, history_sql)
    assert [(n["command"], n["status"], n["exit_code"], n["users_scored"]) for n in nights] == [
        ("run", "success", "0", str(len(expected.scores)))]
    assert [(n["anchor_date"], n["runs"], n["succeeded"]) for n in by_anchor] == [
        (anchor.isoformat(), "1", "t")]
    status = term.run(blocks["status"][1])
    assert re.search(rf"^\[INFO\] run: last success at .* \(anchor {anchor}, ", status.stdout,
                     re.M), status.stdout
    assert not no_success_alert_fires(gateway_state(handler), time.time())

    # --- a failed night (the test's own): a source the job may no longer read ---------------
    db.execute(f"revoke select on public.interest_goal from {ROLE}")
    failed = term.run("seedtest-analytics run", code=2)  # configuration: not retried
    lines = failed.stderr.strip().splitlines()  # one line per failed dbt node, then the end
    assert all(re.fullmatch(r"\[ERROR\] .* \[error_class=[a-z_]+\]", line) for line in lines)
    assert any("permission denied for table interest_goal" in line
               and line.endswith("[error_class=permission]") for line in lines), lines
    # the closing line (what an operator reads last) names the same class as the exit code
    assert lines[-1].endswith("[error_class=permission]"), lines
    cronjob = yaml.safe_load((REPO / "deploy" / "k8s" / "cronjob.yaml").read_text())
    rules = cronjob["spec"]["jobTemplate"]["spec"]["podFailurePolicy"]["rules"]
    assert any(r["action"] == "FailJob" and 2 in r.get("onExitCodes", {}).get("values", [])
               for r in rules)  # the Job fails at once: SeedtestAnalyticsJobFailed fires
    *_, (cmd, dry, status_, code, error_class, error, failed_anchor, *_) = db.history()
    assert (cmd, dry, status_, code, error_class, failed_anchor) == (
        "run", False, "refused", 2, "permission", anchor)
    assert "interest_goal" in error, error
    nights, by_anchor = db.queries(db.job, history_sql)
    assert [(n["status"], n["exit_code"]) for n in nights] == [("refused", "2"), ("success", "0")]
    assert "permission denied" in nights[0]["error"]
    assert [(n["runs"], n["succeeded"]) for n in by_anchor] == [("2", "t")]
    assert "interest_goal" in by_anchor[0]["errors"]
    status = term.run(blocks["status"][1])  # the last success is still within 26 h
    assert re.search(rf"^\[WARN\] run: then refused at .* \(anchor {anchor}, .*\): permission: "
                     ".*permission denied for table interest_goal", status.stdout, re.M), \
        status.stdout
    failed_body = pushed(handler, "run")[-1]
    assert "seedtest_last_success_timestamp_seconds" not in failed_body
    assert metric(failed_body, "seedtest_exit_class", exit_class="permission", **command) == 1
    assert metric(failed_body, "seedtest_exit_class", exit_class="success", **command) == 0
    # The gateway keeps the first night's success time: 26 h after it, with no success since,
    # the alert fires; a second before, it does not.
    state = gateway_state(handler)
    assert not no_success_alert_fires(state, last_success + 26 * 3600 - 1)
    assert no_success_alert_fires(state, last_success + 26 * 3600 + 1)

    # --- retry, once the cause is fixed ---------------------------------------------------
    db.execute(f"grant select on public.interest_goal to {ROLE}")
    db.execute(f"update public.weekly_kpi set kpis = kpis - 'S' - 'P' - 'S_as_of'"
               f" where week_start = '{week}'")  # so the P/S step must write them again
    term.env["ANCHOR"] = anchor.isoformat()
    retry = term.run(blocks["retry"][1])
    retried = re.search(r"^\[INFO\] Retrying (\d+) failed or skipped dbt nodes .*\(anchor "
                        rf"{anchor}\)$", retry.stdout, re.M)
    assert retried and int(retried.group(1)) > 0, retry.stdout
    tail = [(c, dry, s, code, a) for c, dry, s, code, _, _, a, *_ in db.history()[-2:]]
    assert tail == [("dbt-retry", False, "success", 0, anchor),
                    ("detect-inactivity", False, "success", 0, anchor)]
    assert db.history()[-2][8] > 0  # models built by the retry
    assert kpis(db, week) == after_first  # P and S as the first night wrote them

    # --- rebuild: days older than any night's window come back from the source -------------
    features = ("select * from analytics.features_topic_daily order by user_id, topic_id, date")
    before = [row[:-1] for row in db.rows(features)]  # the last column: when it was computed
    [(oldest,)] = db.rows("select min(date) from analytics.features_topic_daily")
    assert oldest < anchor - dt.timedelta(days=14)
    db.execute(f"delete from analytics.features_topic_daily where date <= '{oldest}'::date + 2")
    assert [row[:-1] for row in db.rows(features)] != before
    term.run(blocks["rebuild"][1])
    assert [row[:-1] for row in db.rows(features)] == before
    tail = [(c, dry, s) for c, dry, s, *_ in db.history()[-2:]]
    assert tail == [("rebuild", True, "success"), ("rebuild", False, "success")]


def test_no_dbt_project_is_one_configuration_line_before_connecting(tmp_path: Path) -> None:
    """A non-editable install run outside the checkout without SEEDTEST_PROJECT_DIR finds no
    dbt project: one line naming the setting, exit 2, nothing connects (the database URL points
    at no server; it used to end with exit 1 and dbt's `Path '<cwd>/profiles' does not exist`)."""
    empty = tmp_path / "no-project"
    empty.mkdir()
    nowhere = f"postgresql://job@/seedtest?host={tmp_path / 'no-socket'}"
    for args in (("run", "--dry-run"), ("rebuild",), ("dbt-retry",)):
        result = run_cli(None, *args, env={"SEEDTEST_PROJECT_DIR": str(empty),
                                           "DATABASE_URL": nowhere})
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert result.stderr.strip().splitlines() == [
            f"[ERROR] no dbt project in {empty} (no dbt_project.yml): set SEEDTEST_PROJECT_DIR"
            " to the folder that holds it (the checkout the package was installed from)"
        ], result.stderr
