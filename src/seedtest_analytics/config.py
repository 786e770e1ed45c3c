"""Run configuration: the env vars of both old jobs, CLI flags winning, validated up front.

Every value is checked before any connection is made; a bad one raises UsageError with one
clear line (exit 2). The validated values become dbt vars, which the dbt project validates
again (macros/validate_vars.sql), so nothing unchecked reaches SQL whichever way dbt runs.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Container, Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import UsageError

_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f", ""}
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_TIMEZONE = re.compile(r"^[A-Za-z0-9_+\-/]{1,64}$")


@dataclass(frozen=True)
class Settings:
    anchor_date: dt.date
    lookback_days: int = 7
    include_theta: bool = False
    activity_timezone: str = "UTC"
    threshold_days: int = 7
    kpi_lookback_days: int = 30
    default_target: float = 0.0
    use_bayesian: bool = False
    churn_horizon_days: int = 14
    source_schema: str = "public"
    map_user_ids: bool = True
    debug: bool = False
    dry_run: bool = False
    churn_model: str = "heuristic"  # METRICS_CHURN_MODEL: heuristic (SPEC S) or logistic

    def dbt_vars(self) -> dict[str, object]:
        return {
            "anchor_date": self.anchor_date.isoformat(),
            "lookback_days": self.lookback_days,
            "include_theta": self.include_theta,
            "activity_timezone": self.activity_timezone,
            "inactivity_threshold_days": self.threshold_days,
            "kpi_lookback_days": self.kpi_lookback_days,
            "default_target": self.default_target,
            "source_schema": self.source_schema,
            "map_user_ids": self.map_user_ids,
        }

    @property
    def since(self) -> dt.date:
        return self.anchor_date - dt.timedelta(days=self.lookback_days)


def parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise UsageError(f"{name} must be true or false (got {raw!r})")


def parse_int(name: str, raw: str | int, *, minimum: int = 0, maximum: int = 100_000) -> int:
    text = str(raw).strip()
    if not re.fullmatch(r"[+-]?\d+", text):
        raise UsageError(f"{name} must be a whole number (got {raw!r})")
    value = int(text)
    if value < minimum or value > maximum:
        raise UsageError(f"{name} must be between {minimum} and {maximum} (got {value})")
    return value


def parse_float(name: str, raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise UsageError(f"{name} must be a number (got {raw!r})") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise UsageError(f"{name} must be a finite number (got {raw!r})")
    return value


CHURN_MODELS = ("heuristic", "logistic")


def parse_choice(name: str, raw: str, choices: tuple[str, ...]) -> str:
    value = raw.strip().lower()
    if value not in choices:
        raise UsageError(f"{name} must be one of {', '.join(choices)} (got {raw!r})")
    return value


def parse_date(name: str, raw: str) -> dt.date:
    text = raw.strip()
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise UsageError(f"{name} must be a date as YYYY-MM-DD (got {raw!r})")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{name} is not a valid date (got {raw!r})") from None


def _dbt_timezones() -> Container[str] | None:
    """The zone names macros/validate_vars.sql accepts (pytz's list; pytz comes with dbt)."""
    try:
        import pytz
    except ImportError:  # pragma: no cover - a dependency of dbt-core
        return None
    return pytz.all_timezones_set  # a lazy set: use `in`, not iteration


def parse_timezone(name: str, raw: str) -> str:
    text = raw.strip()
    if not _TIMEZONE.fullmatch(text):
        raise UsageError(f"{name} must be an IANA time zone such as Asia/Seoul (got {raw!r})")
    # A file of the zoneinfo directory is not necessarily a zone the dbt project (and the
    # database) know: `localtime`, `posixrules`, `right/UTC`, `Factory` would pass here and
    # only fail later inside dbt, with exit code 1 instead of 2.
    known = _dbt_timezones()
    try:
        ZoneInfo(text)
        if known is not None and text not in known:
            raise ZoneInfoNotFoundError(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"{name} is not a known time zone (got {raw!r})") from None
    return text


def parse_identifier(name: str, raw: str) -> str:
    text = raw.strip()
    if not _IDENTIFIER.fullmatch(text):
        raise UsageError(
            f"{name} must be a lowercase PostgreSQL identifier (letters, digits, _) (got {raw!r})"
        )
    return text


def today_in(timezone: str) -> dt.date:
    return dt.datetime.now(ZoneInfo(timezone)).date()


def load_settings(
    env: Mapping[str, str] | None = None,
    *,
    date: str | None = None,
    threshold: str | int | None = None,
    lookback: str | int | None = None,
    dry_run: bool = False,
) -> Settings:
    """Build Settings from the environment, CLI values (already strings or ints) winning."""
    env = os.environ if env is None else env

    def get(key: str, default: str) -> str:
        value = env.get(key)
        return default if value is None or value.strip() == "" else value

    timezone = parse_timezone("ACTIVITY_TIMEZONE", get("ACTIVITY_TIMEZONE", "UTC"))
    today = today_in(timezone)
    anchor_raw = date if date is not None else env.get("ANCHOR_DATE") or None
    if anchor_raw is None:
        anchor = today - dt.timedelta(days=1)
    else:
        anchor = parse_date("--date" if date is not None else "ANCHOR_DATE", anchor_raw)
    if anchor > today:
        raise UsageError(
            f"anchor date {anchor.isoformat()} is in the future (today is {today.isoformat()} "
            f"in {timezone})"
        )
    if lookback is not None:
        lookback_days = parse_int("--lookback", lookback, maximum=3650)
    else:
        lookback_days = parse_int("AGG_LOOKBACK_DAYS", get("AGG_LOOKBACK_DAYS", "7"), maximum=3650)
    if threshold is not None:
        threshold_days = parse_int("--threshold", threshold, maximum=36500)
    else:
        threshold_days = parse_int(
            "INACTIVITY_THRESHOLD_DAYS", get("INACTIVITY_THRESHOLD_DAYS", "7"), maximum=36500
        )
    return Settings(
        anchor_date=anchor,
        lookback_days=lookback_days,
        include_theta=parse_bool("AGG_INCLUDE_THETA", get("AGG_INCLUDE_THETA", "false")),
        activity_timezone=timezone,
        threshold_days=threshold_days,
        kpi_lookback_days=parse_int(
            "KPI_LOOKBACK_DAYS", get("KPI_LOOKBACK_DAYS", "30"), minimum=1, maximum=36500
        ),
        default_target=parse_float("METRICS_DEFAULT_TARGET", get("METRICS_DEFAULT_TARGET", "0.0")),
        use_bayesian=parse_bool("METRICS_USE_BAYESIAN", get("METRICS_USE_BAYESIAN", "false")),
        churn_horizon_days=parse_int(
            "METRICS_CHURN_HORIZON_DAYS", get("METRICS_CHURN_HORIZON_DAYS", "14"), maximum=36500
        ),
        source_schema=parse_identifier("SOURCE_SCHEMA", get("SOURCE_SCHEMA", "public")),
        map_user_ids=parse_bool("MAP_USER_IDS", get("MAP_USER_IDS", "true")),
        debug=parse_bool("DEBUG", get("DEBUG", "false")),
        dry_run=dry_run,
        churn_model=parse_choice(
            "METRICS_CHURN_MODEL", get("METRICS_CHURN_MODEL", "heuristic"), CHURN_MODELS
        ),
    )
