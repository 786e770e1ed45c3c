"""Is S right? The churn backtest (`backtest --start D1 --end D2 [--every N]`).

For each anchor A = D1, D1 + N, ... <= D2, the users inactive as of A are scored exactly as
the nightly run would have scored them on A, and compared with what happened: churned = no
activity from any activity source on the days A + 1 .. A + h (the local calendar days of
(end of A, end of A + h]), h = METRICS_CHURN_HORIZON_DAYS. Anchors whose horizon ends after
the newest activity day in the data, or after the run's anchor date (yesterday), are left
out and reported as left out.

Set-based: one dbt build of churn_user_anchors (a view over the anchor spine, on the activity
model the nightly run keeps current; built first where the nightly has not run yet) and one
read of it; the scoring and the metrics are numpy over whole columns.

Scorers: `heuristic` (the nightly's S through scoring.formulas.churn_risk, the nightly's own
function), `days_inactive` (days since the last activity; AUC only) and `logistic` (the
latest version trained by `train-churn`, evaluated only on anchors after its training
window).

numpy, scikit-learn and matplotlib are the optional extra [backtest]; without them these
commands stop with one line (exit 2). The nightly's logistic mode does not need them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from .. import __version__, log
from ..config import Settings
from ..db.connection import ConnectionParams, connect
from ..dbt.runner import target_schema
from ..errors import UsageError
from ..scoring.churn_champion import Candidate
from ..scoring.churn_model import RESULTS_TABLE, ensure_tables, latest_model, usable
from .anchors import (
    build_user_anchors,
    check_spine,
    newest_activity_day,
    read_user_anchors,
    require_extra,
    split_anchors,
)
from .evaluation import Backtest, evaluate_backtest, format_metric


def writable(path: Path, flag: str) -> Path:
    path = path.expanduser()
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a directory")
    parent = path.parent.resolve()
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UsageError(f"{flag} {path}: directory {parent} does not exist or is not writable")
    return path


def _stage(path: Path, content: bytes) -> Path:
    """Write next to `path` under a temporary name; renamed into place once all is done."""
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent.resolve())
    with os.fdopen(handle, "wb") as out:
        out.write(content)
    umask = os.umask(0o022)
    os.umask(umask)
    os.chmod(name, 0o666 & ~umask)  # as a plain open() would have created it
    return Path(name)


def store_pooled(
    conn: psycopg.Connection,
    schema: str,
    backtest: Backtest,
    anchors: Sequence[dt.date],
    every: int,
) -> uuid.UUID:
    """The pooled results, one row per scorer, under one new run id; one transaction."""
    run_id = uuid.uuid4()
    report = backtest.report
    ensure_tables(conn, schema)
    kept = len(anchors) - len(report["anchors_left_out"])
    with conn.cursor() as cur:
        for row in report["pooled"]:
            logistic = row["scorer"] == "logistic" and backtest.model is not None
            cur.execute(
                sql.SQL(
                    "insert into {} (run_id, scorer, model_version, first_anchor, last_anchor,"
                    " every_days, anchors, anchors_left_out, horizon_days, threshold_days,"
                    " users, churned, auc, brier, calibration, package_version)"
                    " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                ).format(sql.Identifier(schema, RESULTS_TABLE)),
                (
                    run_id,
                    row["scorer"],
                    backtest.model.version if logistic and backtest.model else None,
                    anchors[0],
                    anchors[-1],
                    every,
                    report["logistic_model"]["anchors_evaluated"] if logistic else kept,
                    len(report["anchors_left_out"]),
                    report["horizon_days"],
                    report["threshold_days"],
                    row["users"],
                    row["churned"],
                    row["auc"],
                    row["brier"],
                    None if row["calibration"] is None else Jsonb(row["calibration"]),
                    __version__,
                ),
            )
    return run_id


def run_backtest(
    params: ConnectionParams,
    settings: Settings,
    *,
    start: dt.date,
    end: dt.date,
    every: int,
    output: Path,
    html: Path | None,
) -> Backtest:
    require_extra("backtest", "numpy", *(("matplotlib",) if html is not None else ()))
    anchors = check_spine(start, end, every, settings)
    output = writable(output, "--output")
    html = None if html is None else writable(html, "--html")
    started = time.perf_counter()
    schema = target_schema()
    build_user_anchors(params, settings, anchors, every)
    built = time.perf_counter()
    with connect(params) as conn:
        newest = newest_activity_day(conn, schema, settings.anchor_date)
        kept, left_out = split_anchors(
            anchors, settings.churn_horizon_days, newest, settings.anchor_date
        )
        model = latest_model(conn, schema)
        conn.rollback()
        if model is not None:
            try:
                model = usable(model, settings, schema)
            except UsageError as exc:
                log.warn(f"logistic left out of the backtest: {exc}")
                model = None
        else:
            log.info("No trained churn model (train-churn): logistic left out of the backtest")
        champion = current_champion(conn, schema, settings)
        candidates = latest_candidates(conn, schema)
        rows = read_user_anchors(conn, schema, kept)
        read = time.perf_counter()
        backtest = evaluate_backtest(rows, kept, left_out, settings, model, champion, candidates)
        staged = [(_stage(output, (json.dumps(backtest.report, indent=1) + "\n").encode()), output)]
        if html is not None:
            from .report import render_html

            staged.append((_stage(html, render_html(backtest).encode()), html))
        try:
            run_id = store_pooled(conn, schema, backtest, anchors, every)
            conn.commit()
            for temporary, final in staged:
                temporary.replace(final)
        finally:
            for temporary, _ in staged:
                temporary.unlink(missing_ok=True)
    if not kept:
        log.warn("No anchor has a complete horizon: nothing to evaluate (see the left-out anchors)")
    if left_out:
        log.info(
            f"Anchors left out (horizon of {settings.churn_horizon_days} days ends after "
            f"{min(newest, settings.anchor_date) if newest else 'the data'}): "
            f"{', '.join(a.isoformat() for a in left_out)}"
        )
    if model is not None:
        log.info(
            f"Scorer logistic: {model.describe()}; evaluated on "
            f"{backtest.report['logistic_model']['anchors_evaluated']} later anchors"
        )
    for row in backtest.report["pooled"]:
        log.info(
            f"Backtest pooled {row['scorer']}: users={row['users']}, "
            f"churned={row['churned']}, AUC={format_metric(row['auc'])}, "
            f"Brier={format_metric(row['brier'])}"
        )
    log.info(
        f"Backtest: {len(rows)} user-anchors over {len(kept)} anchors (left out "
        f"{len(left_out)}); dbt build {built - started:.1f} s, read {read - built:.1f} s, "
        f"scoring and metrics {backtest.seconds:.1f} s, total "
        f"{time.perf_counter() - started:.1f} s; run {run_id} in {schema}.{RESULTS_TABLE}"
    )
    log.info(f"Report: {output.resolve()}" + (f" and {html.resolve()}" if html else ""))
    return backtest


def current_champion(conn: psycopg.Connection, schema: str, settings: Settings) -> Candidate | None:
    """The champion the nightly's auto mode would use on the run's anchor date (whatever its
    age: the backtest evaluates it only on anchors after its training window)."""
    from ..scoring.churn_champion import champions, choose_champion

    rows = champions(conn, schema)
    conn.rollback()
    return choose_champion(rows, settings, 36500)[0] if rows else None


def latest_candidates(conn: psycopg.Connection, schema: str) -> list[Candidate]:
    """The valid candidates of the newest train-churn round (the backtest shows each)."""
    from ..scoring.churn_champion import (
        _COLUMNS,
        CANDIDATES_TABLE,
        InvalidCandidate,
        parse_candidate,
        table_exists,
    )

    if not table_exists(conn, schema, CANDIDATES_TABLE):
        return []
    rows = conn.execute(
        sql.SQL(
            "select " + _COLUMNS + " from {} where created_at = (select max(created_at) from {})"
            " order by candidate_id"
        ).format(*[sql.Identifier(schema, CANDIDATES_TABLE)] * 2)
    ).fetchall()
    conn.rollback()
    result = []
    for row in rows:
        try:
            result.append(parse_candidate(row))
        except (InvalidCandidate, TypeError, ValueError) as exc:
            log.warn(f"churn candidate {row[0]} left out of the backtest: {exc}")
    return result
