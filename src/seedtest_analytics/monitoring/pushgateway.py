"""The run's metrics, pushed to a Prometheus Pushgateway when SEEDTEST_PUSHGATEWAY_URL is set.

One group per command (job `seedtest-analytics`, grouping label `command`), replaced at the
end of every run, with these metrics (label `command`; their names are an interface: alert
rules are written on them):

- seedtest_last_success_timestamp_seconds: when the command last succeeded (only pushed by
  a successful run, so a failed night leaves the previous value in place: a push with
  `pushadd` keeps what this push does not set);
- seedtest_run_duration_seconds, seedtest_users_scored, seedtest_users_failed,
  seedtest_rows_written: of the run that ended;
- seedtest_exit_class: 1 for the class of the run that ended (label `exit_class`: success, or
  a failure class of outcome.py), 0 for every other class.

A dry run pushes nothing. A push that fails is a warning: the run's outcome stands.
"""

from __future__ import annotations

import time

from .. import log
from ..config import PUSHGATEWAY_URL
from ..db.history import RunRecord
from ..outcome import KNOWN

PUSHGATEWAY_ENV = PUSHGATEWAY_URL.env
JOB = "seedtest-analytics"
PUSH_TIMEOUT_SECONDS = 10
EXIT_CLASSES = ("success", *sorted(KNOWN))


def exit_class(record: RunRecord) -> str:
    if record.exit_code == 0:
        return "success"
    return record.error_class or "failed"


def push(url: str, command: str, record: RunRecord | None) -> None:
    """Push the metrics of `record` (the run of `command` that just ended) to the Pushgateway
    at `url` (settings.safety.pushgateway_url; empty: nowhere)."""
    if not url or record is None or record.dry_run:
        return  # a dry run is not a night: it would stand for the command's last run
    try:
        from prometheus_client import CollectorRegistry, Gauge, pushadd_to_gateway
    except ImportError:
        log.warn(f"{PUSHGATEWAY_ENV} is set but prometheus_client is not installed; no metrics")
        return
    registry = CollectorRegistry()

    def gauge(name: str, text: str, value: float, *labels: str) -> Gauge:
        metric = Gauge(name, text, ["command", *labels], registry=registry)
        if not labels:
            metric.labels(command=command).set(value)
        return metric

    duration = time.monotonic() - record.started
    if record.exit_code == 0:
        gauge(
            "seedtest_last_success_timestamp_seconds",
            "Unix time of the last successful run of the command",
            time.time(),
        )
    gauge("seedtest_run_duration_seconds", "Duration of the last run", duration)
    gauge("seedtest_users_scored", "Users scored by the last run", record.users_scored or 0)
    gauge("seedtest_users_failed", "Users not scored or written", record.users_failed or 0)
    gauge(
        "seedtest_rows_written",
        "weekly_kpi rows written by the last run",
        record.users_scored or 0,
    )
    classes = gauge(
        "seedtest_exit_class", "1 for how the last run ended, 0 otherwise", 0, "exit_class"
    )
    ended = exit_class(record)
    for name in sorted({*EXIT_CLASSES, ended}):
        classes.labels(command=command, exit_class=name).set(1 if name == ended else 0)
    try:
        pushadd_to_gateway(
            url,
            job=JOB,
            grouping_key={"command": command},
            registry=registry,
            timeout=PUSH_TIMEOUT_SECONDS,
        )
    except Exception as exc:  # the metrics are a report of the run, never its outcome
        text = " ".join(str(exc).split()) or type(exc).__name__
        log.warn(f"metrics not pushed to {PUSHGATEWAY_ENV}: {text}")
