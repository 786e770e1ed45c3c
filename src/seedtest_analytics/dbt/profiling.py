"""Phase timings of one process, for the benchmark: with SEEDTEST_PROFILE_FILE set, every dbt
invocation (its nodes' start and end) and the P/S step append one JSON line to that file.
Without it nothing is recorded and nothing is imported."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

from ..config import PROFILE_FILE, profile_file

PROFILE_ENV = PROFILE_FILE.env


def enabled() -> bool:
    return bool(profile_file())


def record(kind: str, **fields: Any) -> None:
    """Append one event (`kind` and fields) to the profile file, if one is configured."""
    path = profile_file()
    if not path:
        return
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps({"kind": kind, **fields}, default=str) + "\n")


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """Record the wall time of the block as phase `name`."""
    start = time.time()
    try:
        yield
    finally:
        record("phase", name=name, start=start, end=time.time())


def dbt_nodes(result: object) -> list[dict[str, Any]]:
    """Each node of a dbt invocation's results: name, resource type, start, end (epoch s)."""
    nodes: list[dict[str, Any]] = []
    run_results = getattr(result, "result", None)
    for node_result in getattr(run_results, "results", None) or []:
        timing = getattr(node_result, "timing", None) or []
        starts = [t.started_at for t in timing if getattr(t, "started_at", None)]
        ends = [t.completed_at for t in timing if getattr(t, "completed_at", None)]
        if not starts or not ends:
            continue
        nodes.append(
            {
                "name": node_result.node.name,
                "type": str(node_result.node.resource_type),
                "start": min(starts).timestamp(),
                "end": max(ends).timestamp(),
            }
        )
    return nodes
