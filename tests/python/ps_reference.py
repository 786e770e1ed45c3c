"""An independent Python computation of the detect-inactivity results.

Everything here is computed from the raw application rows (exam_results, session,
ability_estimates, mirt_ability, interest_goal, weekly_kpi): none of the dbt models and none
of seedtest_analytics is used, so a defect in either shows up as a difference.

- last activity per user (application id), per source and overall, as of the end of the
  anchor day in the activity time zone;
- the inactive users for a threshold;
- for each inactive user: d, k, g, the ability, the target, P (normal or empirical Bayes) and S;
- the weekly_kpi table the write must leave behind.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

# The user id rule, defined once for everything outside the dbt project.
from seedtest_dev.rules import app_user_uuid as uuid_form
from seedtest_dev.rules import is_uuid_shaped

SOURCES = ("exam_results", "attempt", "session", "features_topic_daily")

Row = dict[str, Any]


# --- user identity ---------------------------------------------------------------

def build_id_map(app_ids: Iterable[str], other_ids: Iterable[str]) -> dict[str, str]:
    """uuid form -> application id. A non-uuid id wins (its uuid form is derived from it);
    then an id from the application's own tables (`app_ids`); then byte order."""
    best: dict[str, tuple[bool, int, bytes, str]] = {}
    for rank, ids in ((0, app_ids), (1, other_ids)):
        for user_id in ids:
            if not user_id:
                continue
            key = (is_uuid_shaped(user_id), rank, user_id.encode(), user_id)
            form = uuid_form(user_id)
            if form not in best or key < best[form]:
                best[form] = key
    return {form: key[3] for form, key in best.items()}


class IdMap:
    def __init__(self, mapping: Mapping[str, str]) -> None:
        self.mapping = dict(mapping)

    def __call__(self, user_id: str | None) -> str | None:
        """The application id of a user id in either form; None for a missing/empty id."""
        if user_id is None or user_id == "":
            return None
        if is_uuid_shaped(user_id):
            return self.mapping.get(user_id.lower(), user_id)
        return user_id


# --- the raw rows ---------------------------------------------------------------------------

@dataclass
class Sources:
    exam_results: list[Row]
    sessions: list[Row]
    ability_estimates: list[Row]
    mirt_ability: list[Row]
    interest_goals: list[Row]
    weekly_kpi: list[Row]


def _rows(conn: psycopg.Connection, query: str) -> list[Row]:
    cur = conn.execute(query)
    names = [column.name for column in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def load_sources(conn: psycopg.Connection, schema: str = "public") -> Sources:
    """The application tables as they are (no view, no model)."""
    def q(table: str, columns: str) -> list[Row]:
        return _rows(conn, f"select {columns} from {schema}.{table}")

    return Sources(
        exam_results=q("exam_results", "id, user_id, result_json, created_at, updated_at"),
        sessions=q("session", "id, user_id, started_at, ended_at"),
        ability_estimates=q("ability_estimates", "user_id, mean, sd, fitted_at"),
        mirt_ability=q("mirt_ability", "user_id, theta, se, fitted_at"),
        interest_goals=q("interest_goal", "user_id, target_level, priority, created_at"),
        weekly_kpi=q("weekly_kpi", "user_id, week_start, kpis"),
    )


def id_map(src: Sources) -> IdMap:
    app_ids = [r["user_id"] for r in src.exam_results + src.sessions + src.weekly_kpi]
    other_ids = [r["user_id"] for r in src.interest_goals + src.ability_estimates]
    return IdMap(build_id_map(
        [u for u in app_ids if u is not None], [u for u in other_ids if u is not None]
    ))


# --- days in the activity time zone ---------------------------------------------------------

def local_midnight(day: dt.date, timezone: str) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(timezone))


def local_day(moment: dt.datetime, timezone: str) -> dt.date:
    return moment.astimezone(ZoneInfo(timezone)).date()


def anchor_end(anchor: dt.date, timezone: str) -> dt.datetime:
    return local_midnight(anchor + dt.timedelta(days=1), timezone)


# --- activity -------------------------------------------------------------------------------

def exam_has_attempts(result_json: Any) -> bool:
    """Whether the attempt view shows at least one row for this exam (a non-empty question_id)."""
    questions = result_json.get("questions") if isinstance(result_json, dict) else None
    if not isinstance(questions, list):
        return False
    for question in questions:
        if not isinstance(question, dict):
            continue
        qid = question.get("question_id")
        if qid is None:
            continue
        text = qid if isinstance(qid, str) else str(qid)
        if text != "":
            return True
    return False


def exam_topics(result_json: Any) -> bool:
    """Whether one of the exam's attempts has a topic (features_topic_daily keeps only those)."""
    questions = result_json.get("questions") if isinstance(result_json, dict) else None
    if not isinstance(questions, list):
        return False
    return any(
        isinstance(q, dict) and q.get("question_id") not in (None, "")
        and q.get("topic") is not None for q in questions
    )


@dataclass
class Event:
    user_id: str
    at: dt.datetime
    source: str


def activity_events(src: Sources, anchor: dt.date, timezone: str) -> list[Event]:
    """Every activity up to the end of the anchor day, in the application id space."""
    ids = id_map(src)
    end = anchor_end(anchor, timezone)
    events: list[Event] = []
    for exam in src.exam_results:
        at = exam["updated_at"] or exam["created_at"]
        if exam["user_id"] in (None, "") or at >= end:
            continue
        user = ids(exam["user_id"])
        assert user is not None
        events.append(Event(user, at, "exam_results"))
        if exam_has_attempts(exam["result_json"]):
            # the attempt view carries the uuid form; mapping it back gives the same person
            attempt_user = ids(uuid_form(exam["user_id"]))
            assert attempt_user is not None
            events.append(Event(attempt_user, at, "attempt"))
            if exam_topics(exam["result_json"]):
                # last_seen_at is the real time the user was seen: the attempt time
                events.append(Event(attempt_user, at, "features_topic_daily"))
    for session in src.sessions:
        at = session["ended_at"] or session["started_at"]
        user = ids(session["user_id"])
        if user is None or at >= end:
            continue
        events.append(Event(user, at, "session"))
    return events


@dataclass
class LastActivity:
    user_id: str
    last_at: dt.datetime
    per_source: dict[str, dt.datetime]
    days: set[dt.date]


def last_activity(src: Sources, anchor: dt.date, timezone: str) -> dict[str, LastActivity]:
    result: dict[str, LastActivity] = {}
    for event in activity_events(src, anchor, timezone):
        entry = result.get(event.user_id)
        if entry is None:
            entry = result[event.user_id] = LastActivity(event.user_id, event.at, {}, set())
        entry.last_at = max(entry.last_at, event.at)
        previous = entry.per_source.get(event.source)
        entry.per_source[event.source] = event.at if previous is None else max(previous, event.at)
        entry.days.add(local_day(event.at, timezone))
    return result


def inactive_users(
    activity: Mapping[str, LastActivity], anchor: dt.date, timezone: str, threshold: int
) -> set[str]:
    """Last activity before local midnight of (anchor - threshold + 1)."""
    cutoff = local_midnight(anchor - dt.timedelta(days=threshold - 1), timezone)
    return {user for user, entry in activity.items() if entry.last_at < cutoff}


# --- ability and target ---------------------------------------------------------------------

def abilities(
    src: Sources, anchor: dt.date, timezone: str
) -> dict[str, tuple[float, float | None]]:
    """(mean, sd) per user as of the anchor: latest ability_estimates, else latest mirt_ability."""
    ids = id_map(src)
    end = anchor_end(anchor, timezone)

    def latest(rows: list[Row], mean_col: str, sd_col: str) -> dict[str, tuple[float, Any]]:
        best: dict[str, tuple[dt.datetime, float, Any]] = {}
        for row in rows:
            user = ids(row["user_id"])
            if user is None or row[mean_col] is None or row["fitted_at"] >= end:
                continue
            if user not in best or row["fitted_at"] > best[user][0]:
                best[user] = (row["fitted_at"], row[mean_col], row[sd_col])
        return {
            user: (float(v[1]), None if v[2] is None else float(v[2]))
            for user, v in best.items()
        }

    result = latest(src.mirt_ability, "theta", "se")
    result.update(latest(src.ability_estimates, "mean", "sd"))
    return result


def targets(src: Sources, anchor: dt.date, timezone: str) -> dict[str, float]:
    """interest_goal target per user: highest priority, then latest created, by the anchor end."""
    ids = id_map(src)
    end = anchor_end(anchor, timezone)
    best: dict[str, tuple[tuple[float, dt.datetime], float]] = {}
    for goal in src.interest_goals:
        user = ids(goal["user_id"])
        if user is None or goal["target_level"] is None or goal["created_at"] >= end:
            continue
        priority = -math.inf if goal["priority"] is None else goal["priority"]
        key = (priority, goal["created_at"])
        if user not in best or key > best[user][0]:
            best[user] = (key, float(goal["target_level"]))
    return {user: value for user, (_, value) in best.items()}


# --- P and S --------------------------------------------------------------------------------

def phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def p_normal(mu: float, sd: float | None, target: float) -> float | None:
    if sd is None or not sd > 0:
        return None
    return min(1.0, max(0.0, 1.0 - phi((target - mu) / sd)))


def prior_of(means: list[float]) -> tuple[float, float] | None:
    if len(means) < 2:
        return None
    m0 = sum(means) / len(means)
    s0sq = sum((m - m0) ** 2 for m in means) / len(means)
    if s0sq <= 0:
        return None
    return m0, s0sq


def p_bayes(mu: float, sd: float | None, target: float, prior: tuple[float, float] | None
            ) -> float | None:
    if prior is None:
        return p_normal(mu, sd, target)
    if sd is None or not sd > 0:
        return None
    m0, s0sq = prior
    v = 1.0 / (1.0 / s0sq + 1.0 / sd**2)
    mean = v * (m0 / s0sq + mu / sd**2)
    return min(1.0, max(0.0, 1.0 - phi((target - mean) / math.sqrt(v))))


def clamp(x: float) -> float:
    return min(1.0, max(0.0, x))


def s_churn(d: int, k: int, g: float, h: int) -> float:
    return clamp(0.6 * clamp(d / max(1, h)) + 0.25 * clamp(g / 7) + 0.15 * clamp(1 - k / 10))


# --- the whole run --------------------------------------------------------------------------

@dataclass
class UserScore:
    user_id: str
    d: int
    k: int
    g: float
    mu: float | None
    sd: float | None
    target: float
    p: float | None
    s: float


@dataclass
class Expected:
    anchor: dt.date
    week_start: dt.date
    activity: dict[str, LastActivity]
    inactive: set[str]
    scores: dict[str, UserScore]
    population: list[float] = field(default_factory=list)


def compute(
    src: Sources, *, anchor: dt.date, timezone: str, threshold: int = 7,
    kpi_lookback_days: int = 30, horizon_days: int = 14, default_target: float = 0.0,
    bayesian: bool = False,
) -> Expected:
    activity = last_activity(src, anchor, timezone)
    inactive = inactive_users(activity, anchor, timezone, threshold)
    ability = abilities(src, anchor, timezone)
    goal = targets(src, anchor, timezone)
    population = [mean for mean, _ in ability.values() if math.isfinite(mean)]
    prior = prior_of(population) if bayesian else None
    first_day = anchor - dt.timedelta(days=kpi_lookback_days - 1)
    scores: dict[str, UserScore] = {}
    for user in sorted(inactive):
        entry = activity[user]
        d = (anchor - local_day(entry.last_at, timezone)).days
        window = sorted(day for day in entry.days if first_day <= day <= anchor)
        k = len(window)
        g = (window[-1] - window[0]).days / (k - 1) if k >= 2 else 0.0
        mu, sd = ability.get(user, (None, None))
        target = goal.get(user, default_target)
        p = None if mu is None else (
            p_bayes(mu, sd, target, prior) if bayesian else p_normal(mu, sd, target)
        )
        scores[user] = UserScore(user, d, k, g, mu, sd, target, p,
                                 s_churn(d, k, g, horizon_days))
    return Expected(
        anchor=anchor,
        week_start=anchor - dt.timedelta(days=anchor.weekday()),
        activity=activity, inactive=inactive, scores=scores, population=population,
    )


def expected_weekly_kpi(
    before: Mapping[tuple[str, dt.date], Any], expected: Expected
) -> tuple[dict[tuple[str, dt.date], Any], list[str]]:
    """weekly_kpi kpis after the write, and the users whose row is not a JSON object.

    P and S are merged into the anchor week's row (inserted when missing); every other key
    stays; a null is never written; a non-object kpis is left as it was.
    """
    after = dict(before)
    not_object: list[str] = []
    for user, score in sorted(expected.scores.items()):
        new = {key: value for key, value in (("P", score.p), ("S", score.s)) if value is not None}
        if score.s is not None:
            new["S_as_of"] = expected.anchor.isoformat()
        if not new:
            continue
        key = (user, expected.week_start)
        if key not in after:
            after[key] = new
        elif isinstance(after[key], dict):
            after[key] = {**after[key], **new}
        else:
            not_object.append(user)
    return after, not_object
