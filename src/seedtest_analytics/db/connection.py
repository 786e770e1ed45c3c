"""Where the database is: DATABASE_URL parsed into libpq parameters.

The parameters are handed to dbt through environment variables (profiles/profiles.yml reads
them) and to psycopg as keyword arguments, so the password never appears in a command line
or a log line.

Without DATABASE_URL, a development database registered under the entry point group
`seedtest_analytics.database` is used (the development tools register their embedded
PostgreSQL there); the runtime never imports them, and without them that is a usage error.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from importlib.metadata import entry_points
from typing import Any
from urllib.parse import quote, urlencode

import psycopg
from psycopg.conninfo import conninfo_to_dict

from ..config import database_url as configured_database_url
from ..config import libpq_tls_file, login_user
from ..errors import ConnectError, RunError, UsageError

DATABASE_PROVIDERS = "seedtest_analytics.database"
_SCHEME = re.compile(r"^(postgresql|postgres)(\+psycopg2|\+psycopg)?://", re.IGNORECASE)
_USERINFO = re.compile(r"//[^/?#]*@")
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# The TLS files a URL may name, with the libpq variable that names them otherwise.
SSL_FILES = {
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
}


@dataclass(frozen=True)
class ConnectionParams:
    host: str
    port: int
    user: str
    password: str
    dbname: str
    sslmode: str | None = None
    sslrootcert: str | None = None
    sslcert: str | None = None
    sslkey: str | None = None
    sslcrl: str | None = None

    def ssl_options(self) -> dict[str, str]:
        """The TLS parameters the URL gave (none: libpq's PGSSLMODE, PGSSLROOTCERT, ... apply)."""
        values = {"sslmode": self.sslmode, **{name: getattr(self, name) for name in SSL_FILES}}
        return {name: value for name, value in values.items() if value}

    def psycopg_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "dbname": self.dbname,
            "application_name": "seedtest-analytics",
        }
        if self.password:
            kwargs["password"] = self.password
        kwargs.update(self.ssl_options())
        return kwargs

    def dbt_env(self) -> dict[str, str]:
        """The environment variables profiles/profiles.yml reads. A TLS parameter the URL does
        not give is empty: the profile then passes none, and libpq reads its own PGSSLMODE,
        PGSSLROOTCERT, ... as it does for the job's own connections. dbt-postgres has no
        `sslcrl` key: a URL's sslcrl reaches dbt's libpq as PGSSLCRL (dbt runs in-process)."""
        env = {
            "SEEDTEST_PGHOST": self.host,
            "SEEDTEST_PGPORT": str(self.port),
            "SEEDTEST_PGUSER": self.user,
            "DBT_ENV_SECRET_PGPASSWORD": self.password,
            "SEEDTEST_PGDATABASE": self.dbname,
            "SEEDTEST_PGSSLMODE": self.sslmode or "",
            "SEEDTEST_PGSSLROOTCERT": self.sslrootcert or "",
            "SEEDTEST_PGSSLCERT": self.sslcert or "",
            "SEEDTEST_PGSSLKEY": self.sslkey or "",
        }
        if self.sslcrl:
            env["PGSSLCRL"] = self.sslcrl
        return env

    def redacted(self) -> str:
        """The libpq URI without the password: printable, and accepted as is by psql."""
        user, dbname = quote(self.user, safe=""), quote(self.dbname, safe="")
        if self.host.startswith("/"):  # a unix socket directory
            query = urlencode({"host": self.host, "port": self.port}, safe="/")
            return f"postgresql://{user}@/{dbname}?{query}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"postgresql://{user}@{host}:{self.port}/{dbname}"

    def with_dbname(self, dbname: str) -> ConnectionParams:
        return replace(self, dbname=dbname)

    def to_url(self) -> str:
        """A libpq URI for DATABASE_URL (holds the password: never print it)."""
        auth = quote(self.user, safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        query = {"host": self.host, "port": str(self.port), **self.ssl_options()}
        return f"postgresql://{auth}@/{quote(self.dbname, safe='')}?{urlencode(query, safe='/')}"


def parse_database_url(url: str) -> ConnectionParams:
    """Parse a libpq URI (also the SQLAlchemy `postgresql+psycopg2://` form) with libpq's own
    parser. A unix socket is given as `?host=/dir` (or a percent-encoded path as the host).
    """
    text = url.strip()
    scheme = _SCHEME.match(text)
    if scheme is None:
        found = text.split("://", 1)[0] if "://" in text else "none"
        raise UsageError(
            "DATABASE_URL must start with postgresql:// or postgresql+psycopg2:// "
            f"(got scheme {found[:20]!r})"
        )
    try:
        # libpq knows postgresql:// and postgres:// only; the driver suffix is SQLAlchemy's.
        values = conninfo_to_dict(f"{scheme.group(1).lower()}://{text[scheme.end() :]}")
    except psycopg.ProgrammingError as exc:
        reason = _USERINFO.sub("//***@", str(exc).strip().splitlines()[0])
        raise UsageError(f"DATABASE_URL is not a valid PostgreSQL URL: {reason}") from None
    port_text = str(values.get("port") or 5432).strip()
    if not port_text.isascii() or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise UsageError(f"DATABASE_URL has an invalid port (got {port_text!r})")
    user = str(values.get("user") or login_user())
    sslmode = str(values.get("sslmode") or "") or None
    if sslmode is not None and sslmode not in SSL_MODES:
        raise UsageError(
            f"DATABASE_URL has an invalid sslmode (got {sslmode[:20]!r}; one of "
            f"{', '.join(SSL_MODES)})"
        )
    if values.get("sslpassword"):
        raise UsageError(
            "DATABASE_URL's sslpassword is not supported (dbt cannot pass it on): give an "
            "unencrypted client key in sslkey, readable by the job's user only"
        )
    files = {name: str(values.get(name) or "") or None for name in SSL_FILES}
    params = ConnectionParams(
        host=str(values.get("host") or "localhost"),
        port=int(port_text),
        user=user,
        password=str(values.get("password") or ""),
        dbname=str(values.get("dbname") or user),
        sslmode=sslmode,
        **files,
    )
    check_ssl_files(params)
    return params


def check_ssl_files(params: ConnectionParams) -> None:
    """Every TLS file named, in the URL or else in libpq's variable (PGSSLROOTCERT, ...), is a
    readable file; else a UsageError before anything runs (libpq would, with sslmode=require,
    quietly skip a root certificate that is not there)."""
    for name, variable in SSL_FILES.items():
        given = getattr(params, name)
        where = f"DATABASE_URL's {name}" if given else variable
        path = given or libpq_tls_file(variable)
        if not path or (name == "sslrootcert" and path == "system"):
            continue
        if not os.path.isfile(path):
            raise UsageError(f"{where} names {path}, which is not a file (mount it or fix {where})")
        if not os.access(path, os.R_OK):
            raise UsageError(f"{where} names {path}, which this user ({os.getuid()}) cannot read")


def default_database_url() -> str:
    """The URL of the development database when DATABASE_URL is not set: the first provider
    of the entry point group `seedtest_analytics.database` (installed with the development
    tools, never in the image)."""
    providers = sorted(entry_points(group=DATABASE_PROVIDERS), key=lambda ep: ep.name)
    if not providers:
        raise UsageError(
            "DATABASE_URL is not set (and the development tools with their embedded "
            "PostgreSQL are not installed: bash scripts/bootstrap.sh)"
        )
    try:
        url = providers[0].load()()
    except ImportError as exc:
        raise RunError(f"the development database is not available: {exc}") from None
    if not isinstance(url, str):
        raise RunError(f"the development database {providers[0].value} gave no URL")
    return url


def resolve(database_url: str | None = None) -> ConnectionParams:
    """DATABASE_URL when set, else the development database (when installed)."""
    url = database_url if database_url is not None else configured_database_url()
    if url.strip():
        return parse_database_url(url)
    return parse_database_url(default_database_url())


def _reason(exc: Exception, params: ConnectionParams) -> str:
    """libpq's message as one clean line: its lines joined, tabs and the `connection failed:`
    prefix dropped, the password (should a message ever hold it) masked."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = "; ".join(lines) or type(exc).__name__
    text = re.sub(r"^connection (failed|is bad): ", "", text)
    if params.password:
        text = text.replace(params.password, "***")
    return text


@contextlib.contextmanager
def connect(params: ConnectionParams, *, autocommit: bool = False) -> Iterator[psycopg.Connection]:
    """A psycopg connection; connection failures become one clear RunError line."""
    try:
        conn = psycopg.connect(**params.psycopg_kwargs(), autocommit=autocommit, connect_timeout=15)
    except psycopg.OperationalError as exc:
        reason = _reason(exc, params)
        raise ConnectError(f"cannot connect to {params.redacted()}: {reason}") from None
    try:
        yield conn
    finally:
        conn.close()
