"""The domain rules the development tools (and the tests' references) compute outside the
dbt project, each defined once here.

The product computes them in SQL (the application's `app_user_uuid` function and
macros/user_ids/user_ids.sql; models/intermediate/int_topic_daily__improvement_scored.sql); the
tests check these definitions against that SQL (test_synthetic.py, test_bench.py, and the
reference comparisons of test_features.py).
"""

from __future__ import annotations

import hashlib
import math
import re
import uuid

_UUID_SHAPED = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE
)

# The improvement index: recent window = the day and the 13 before it, previous
# window = the 14 days before that.
RECENT_DAYS = 14
PREVIOUS_DAYS = 14
FULL_EXPOSURE_ATTEMPTS = 30.0
Z = 1.96
MAX_PENALTY = 0.5


def is_uuid_shaped(user_id: str) -> bool:
    """8-4-4-4-12 hex digits, any case, nothing around them."""
    return _UUID_SHAPED.fullmatch(user_id) is not None


def app_user_uuid(user_id: str) -> str:
    """The uuid form of an application user id, as lowercase uuid text: a
    uuid-shaped id (8-4-4-4-12 hex digits, any case) is itself; any other id is
    `md5(user_id)` shaped as a uuid."""
    if is_uuid_shaped(user_id):
        return str(uuid.UUID(user_id))
    return str(uuid.UUID(hex=hashlib.md5(user_id.encode("utf-8")).hexdigest()))


def improvement_index(n_r: int, c_r: int, n_p: int, c_p: int) -> float | None:
    """(p_r - p_p) * min(1, n_r / 30) * (1 - min(0.5, 1.96 * sqrt(p_r (1 - p_r) / n_r))),
    clamped to [-1, 1], from the attempts (n) and correct answers (c) of the recent (r) and
    previous (p) windows; None when either window has no attempt."""
    if not n_r or not n_p:
        return None
    p_r, p_p = c_r / n_r, c_p / n_p
    exposure = min(1.0, n_r / FULL_EXPOSURE_ATTEMPTS)
    penalty = 1.0 - min(MAX_PENALTY, Z * math.sqrt(p_r * (1.0 - p_r) / n_r))
    return max(-1.0, min(1.0, (p_r - p_p) * exposure * penalty))


def improvement_sql(n_r: str, c_r: str, n_p: str, c_p: str) -> str:
    """improvement_index as a SQL expression over four integer SQL expressions."""
    p_r = f"({c_r}::float8 / {n_r})"
    return (
        f"case when {n_r} > 0 and {n_p} > 0 then greatest(-1.0, least(1.0, "
        f"({p_r} - {c_p}::float8 / {n_p}) * least(1.0, {n_r} / {FULL_EXPOSURE_ATTEMPTS!r}) "
        f"* (1.0 - least({MAX_PENALTY!r}, {Z!r} * sqrt({p_r} * (1.0 - {p_r}) / {n_r})))"
        ")) end"
    )
