"""The dbt docs site: lineage from the sources to the P/S step (an exposure)."""

from __future__ import annotations

import os
from pathlib import Path

from .. import log
from ..config import Settings
from ..db.connection import ConnectionParams
from .runner import invoke, project_root


def target_path() -> Path:
    """Where dbt writes the site: DBT_TARGET_PATH (relative to the project) or target/."""
    configured = Path(os.environ.get("DBT_TARGET_PATH", "").strip() or "target")
    return configured if configured.is_absolute() else project_root() / configured


def run_docs(params: ConnectionParams, settings: Settings, *, serve: bool, port: str) -> int:
    """`dbt docs generate --static`; with serve, `dbt docs serve` on localhost:port."""
    summary = invoke(params, "docs generate", settings, extra_args=["--static"])
    if not summary.success:
        for message in summary.errors:
            log.error(message)
        return 1
    target = target_path()
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
