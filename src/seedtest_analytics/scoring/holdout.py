"""The outreach holdout: a stable hashed share of the scored students, flagged `holdout` in
kpis, so outreach can leave them out and a later backtest can measure what messages change.

SEEDTEST_HOLDOUT_SHARE (0 to 1, default 0: no flag written). A user is in the holdout when
the first 52 bits of sha256("seedtest-holdout:" + user id), read as a fraction of 2^52, are
below the share: the same users every night, and raising the share only adds users.
"""

from __future__ import annotations

import hashlib

from ..config import HOLDOUT_SHARE

HOLDOUT_ENV = HOLDOUT_SHARE.env  # read and checked into settings.holdout_share
_SALT = b"seedtest-holdout:"


def hash_fraction(user_id: str) -> float:
    digest = hashlib.sha256(_SALT + user_id.encode("utf-8", "surrogatepass")).digest()
    return (int.from_bytes(digest[:7], "big") >> 4) / float(1 << 52)


def in_holdout(user_id: str, share: float) -> bool:
    return hash_fraction(user_id) < share
