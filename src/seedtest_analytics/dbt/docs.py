"""The dbt docs site: lineage from the sources to the P/S step (an exposure)."""

from __future__ import annotations

from .. import log
from ..config import Settings
from ..db.connection import ConnectionParams
from ..paths import dbt_target_path
from .runner import invoke


def run_docs(params: ConnectionParams, settings: Settings, *, serve: bool, port: str) -> int:
    """`dbt docs generate --static`; with serve, `dbt docs serve` on localhost:port."""
    summary = invoke(params, "docs generate", settings, extra_args=["--static"])
    if not summary.success:
        for message in summary.errors:
            log.error(message)
        return 1
    target = dbt_target_path()
    log.info(
        f"Docs site generated: {target / 'index.html'} (single page: "
        f"{target / 'static_index.html'})"
    )
    if serve:
        if not port.isdigit():
            log.error(f"--port must be a number (got {port!r})")
            return 2
        serve_summary = invoke(
            params,
            "docs serve",
            settings,
            extra_args=["--port", port, "--host", "127.0.0.1", "--no-browser"],
        )
        return 0 if serve_summary.success else 1
    return 0
