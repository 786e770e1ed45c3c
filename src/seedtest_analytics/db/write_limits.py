"""How many users may go unwritten before the P/S step fails the run.

A user whose P/S cannot be computed, or whose weekly_kpi row cannot be written (its `kpis` is
not a JSON object: left untouched), is a warning line and counts in the Summary's `failed=`.
The run fails (exit 1) only when those users are both more than SEEDTEST_MAX_FAILED_SHARE of
the users found (default 0.01, i.e. 1 %) and more than SEEDTEST_MAX_FAILED_USERS (default 10):
a persistent quirk in a few rows is not a failed night, a systematic failure is.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import MAX_FAILED_SHARE, MAX_FAILED_USERS, Safety

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


def load_limits(safety: Safety) -> Limits:
    """Both settings (checked by config.load_settings: a bad value is exit 2)."""
    return Limits(share=safety.max_failed_share, users=safety.max_failed_users)
