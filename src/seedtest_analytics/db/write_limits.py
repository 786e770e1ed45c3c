"""How many users may go unwritten before the P/S step fails the run.

A user whose P/S cannot be computed, or whose weekly_kpi row cannot be written (its `kpis` is
not a JSON object: left untouched), is a warning line and counts in the Summary's `failed=`.
The run fails (exit 1) only when those users are both more than SEEDTEST_MAX_FAILED_SHARE of
the users found (default 0.01, i.e. 1 %) and more than SEEDTEST_MAX_FAILED_USERS (default 10):
a persistent quirk in a few rows is not a failed night, a systematic failure is.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import MAX_FAILED_SHARE, MAX_FAILED_USERS, environ_get, parse_float, parse_int
from ..errors import UsageError

MAX_FAILED_SHARE_ENV = MAX_FAILED_SHARE.env
MAX_FAILED_USERS_ENV = MAX_FAILED_USERS.env
DEFAULT_SHARE = MAX_FAILED_SHARE.default
DEFAULT_USERS = MAX_FAILED_USERS.default


@dataclass(frozen=True)
class Limits:
    share: float
    users: int

    def exceeded(self, failed: int, found: int) -> str | None:
        """The one line saying why `failed` of `found` users fail the run, or None."""
        if failed <= 0 or found <= 0:
            return None
        share = failed / found
        if share <= self.share or failed <= self.users:
            return None
        return (
            f"{failed} of {found} users found ({share:.1%}) could not be written, more than "
            f"{MAX_FAILED_SHARE_ENV}={self.share:g} and {MAX_FAILED_USERS_ENV}={self.users}; "
            "the others were written"
        )

    def tolerated(self, failed: int, found: int) -> str:
        return (
            f"{failed} of {found} users found could not be scored or written (warnings above); "
            f"within {MAX_FAILED_SHARE_ENV}={self.share:g} or {MAX_FAILED_USERS_ENV}="
            f"{self.users}, so the run succeeds"
        )


def load_limits() -> Limits:
    """Both settings, checked (a bad value is a usage error, exit 2)."""
    raw_share = environ_get(MAX_FAILED_SHARE_ENV).strip() or DEFAULT_SHARE
    share = parse_float(MAX_FAILED_SHARE_ENV, raw_share)
    if not 0 <= share <= 1:
        raise UsageError(f"{MAX_FAILED_SHARE_ENV} must be between 0 and 1 (got {raw_share!r})")
    raw_users = environ_get(MAX_FAILED_USERS_ENV).strip() or DEFAULT_USERS
    return Limits(share=share, users=parse_int(MAX_FAILED_USERS_ENV, raw_users, maximum=10**9))
