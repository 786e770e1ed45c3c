"""The parsers of the settings: each value is checked, and a bad one raises UsageError with one
clear line (exit 2) before anything connects."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Container
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import UsageError

_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f", ""}
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_TIMEZONE = re.compile(r"^[A-Za-z0-9_+\-/]{1,64}$")
# ASCII digits only: \d would also match other scripts' digits.
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
MIN_DATE = dt.date(1900, 1, 1)


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


CHURN_MODELS = ("auto", "heuristic", "logistic")


def parse_choice(name: str, raw: str, choices: tuple[str, ...]) -> str:
    value = raw.strip().lower()
    if value not in choices:
        raise UsageError(f"{name} must be one of {', '.join(choices)} (got {raw!r})")
    return value


def parse_date(name: str, raw: str) -> dt.date:
    """A date by the project's one date rule, the same as macros/vars/validators.sql's
    date_problem (tests/python/test_var_injection.py runs both over the same texts): YYYY-MM-DD
    in ASCII digits, a real calendar date, on or after MIN_DATE."""
    text = raw.strip()
    if not _DATE.fullmatch(text):
        raise UsageError(f"{name} must be a date as YYYY-MM-DD (got {raw!r})")
    try:
        value = dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{name} is not a valid date (got {raw!r})") from None
    if value < MIN_DATE:
        raise UsageError(f"{name} must be on or after {MIN_DATE.isoformat()} (got {raw!r})")
    return value


def _dbt_timezones() -> Container[str] | None:
    """The zone names macros/vars/ accepts (pytz's list; pytz comes with dbt)."""
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
