"""The churn commands' glue: `backtest` and `train-churn` from the command line, and the
end of the demo (train, then backtest)."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from .. import log
from ..config import Settings, parse_date, parse_int
from ..db.connection import ConnectionParams
from ..errors import UsageError
from .anchors import check_spine, require_extra
from .backtest import run_backtest, writable
from .training import run_train


def check_args(args: argparse.Namespace, settings: Settings) -> None:
    """Every check of the command line that needs no database, before the run starts (and
    writes its history row): bad usage is one line, exit 2, and nothing written."""
    every = parse_int("--every", args.every, minimum=1, maximum=3650)
    if args.command == "train-churn":
        until = parse_date("--until", args.until)
        if until > settings.anchor_date:
            raise UsageError(
                f"--until {until} is after {settings.anchor_date}, the last complete "
                "day of data (yesterday, or ANCHOR_DATE)"
            )
        if args.start is not None:
            last = until - dt.timedelta(days=settings.churn_horizon_days)
            check_spine(
                parse_date("--start", args.start),
                last,
                every,
                settings,
                what="--until minus the horizon",
            )
        return
    check_spine(parse_date("--start", args.start), parse_date("--end", args.end), every, settings)
    writable(Path(args.output), "--output")
    if args.html is not None:
        writable(Path(args.html), "--html")


def run_command(args: argparse.Namespace, params: ConnectionParams, settings: Settings) -> int:
    every = parse_int("--every", args.every, minimum=1, maximum=3650)
    if args.command == "train-churn":
        start = None if args.start is None else parse_date("--start", args.start)
        run_train(
            params, settings, until=parse_date("--until", args.until), start=start, every=every
        )
        return 0
    run_backtest(
        params,
        settings,
        start=parse_date("--start", args.start),
        end=parse_date("--end", args.end),
        every=every,
        output=Path(args.output),
        html=None if args.html is None else Path(args.html),
    )
    return 0


def demo_backtest(
    params: ConnectionParams,
    settings: Settings,
    *,
    first_day: dt.date,
    last_day: dt.date,
    directory: Path | None = None,
) -> int:
    """The end of the demo: train the churn model on the first part of its data, backtest all
    three scorers on the rest, and say where the report is. Skipped (exit 0) without the
    [backtest] extra."""
    try:
        require_extra("the demo's backtest", "numpy", "sklearn", "matplotlib")
    except UsageError as exc:
        log.info(f"Skipping the backtest: {exc}")
        return 0
    directory = Path.cwd() if directory is None else directory
    horizon = settings.churn_horizon_days
    # Daily anchors from a couple of weeks into the data to the last one with a complete
    # horizon; the model learns from the first half of them (outcomes up to `until`) and is
    # evaluated on the second half, the other scorers on all of them.
    span = (last_day - first_day).days
    first_anchor = first_day + dt.timedelta(days=min(settings.kpi_lookback_days, span // 4))
    last_anchor = last_day - dt.timedelta(days=horizon)
    anchor_days = (last_anchor - first_anchor).days
    if anchor_days < horizon + 4:
        log.info("Skipping the backtest: the demo data spans too few days")
        return 0
    until = first_anchor + dt.timedelta(days=horizon + (anchor_days - horizon) // 2)
    try:
        run_train(params, settings, until=until, start=first_anchor, every=1)
    except UsageError as exc:  # too few users to learn from: the other scorers still run
        log.warn(f"No churn model for the demo's backtest: {exc}")
    run_backtest(
        params,
        settings,
        start=first_anchor,
        end=last_anchor,
        every=1,
        output=directory / "demo-backtest.json",
        html=directory / "demo-backtest.html",
    )
    log.info(f"Backtest report of the demo data: {(directory / 'demo-backtest.html').resolve()}")
    return 0
