"""The settings that are not dbt vars, and SETTINGS: every environment variable of the
project in the order docs/configuration.md lists them (`seedtest-dev config-docs`)."""

from __future__ import annotations

from .variables import VARS, IntVar, Var

# The other environment variables: Settings fields that are not dbt vars (Safety, Spark, the
# scoring extras), the process state dbt shares (environment.py) and profiles/profiles.yml's.
DATABASE_URL = Var(
    "DATABASE_URL",
    None,
    "",
    group="connection",
    doc="the database: a libpq URI (`postgresql://`, also `postgresql+psycopg2://`; a unix"
    " socket is `?host=/var/run/postgresql`). Unset: the development tools' embedded"
    " PostgreSQL; the image has none",
)
ANCHOR_DATE = Var(
    "ANCHOR_DATE",
    "anchor_date",
    "",
    group="window",
    doc="the last day a run (re)computes, `YYYY-MM-DD`, when `--date` is not given; unset:"
    " yesterday in `ACTIVITY_TIMEZONE`",
)
LOCK_WAIT = IntVar(
    "SEEDTEST_LOCK_WAIT_SECONDS",
    None,
    "300",
    maximum=86_400,
    group="safety",
    doc="how long a command waits for another run's lock before it exits 1 (`0`: do not wait)",
)
DBT_THREADS = Var(
    "SEEDTEST_DBT_THREADS",
    None,
    "2",
    group="dbt",
    doc="dbt's threads (models built in parallel)",
)
DBT_TARGET_PATH = Var(
    "DBT_TARGET_PATH",
    None,
    "target",
    group="dbt",
    doc="where dbt keeps its artifacts (`run_results.json` for `dbt-retry`, the parse it"
    " reuses); on a volume that outlives the pod in Kubernetes. Dry runs use"
    " `<DBT_TARGET_PATH>-dry-run`",
)
DBT_LOG_PATH = Var(
    "DBT_LOG_PATH",
    None,
    "logs",
    group="dbt",
    doc="where dbt writes its log files",
)
PROJECT_DIR = Var(
    "SEEDTEST_PROJECT_DIR",
    None,
    "",
    group="dbt",
    doc="the dbt project the CLI runs (the image sets it); unset: the checkout of an editable"
    " install, else the current folder",
)
PROFILE_FILE = Var(
    "SEEDTEST_PROFILE_FILE",
    None,
    "",
    group="dbt",
    doc="write the run's phase timings (JSON) to this file; used by `seedtest-dev bench`",
)
ENGINE = Var(
    "SEEDTEST_ENGINE",
    None,
    "postgres",
    group="spark",
    doc="`spark` builds the models on Apache Spark (profile target `spark`; see docs/spark.md)",
)
SPARK_SOURCE_SCHEMA = Var(
    "SEEDTEST_SPARK_SOURCE_SCHEMA",
    None,
    "seedtest",
    group="spark",
    doc="the Spark database holding the copies of the application tables",
)
SPARK_MASTER = Var(
    "SEEDTEST_SPARK_MASTER",
    None,
    "local[2]",
    group="spark",
    doc="`spark.master` of the in-process session",
)
SPARK_DIR = Var(
    "SEEDTEST_SPARK_DIR",
    None,
    ".spark",
    group="spark",
    doc="folder of the local session's warehouse and Derby metastore",
)
SPARK_WAREHOUSE = Var(
    "SEEDTEST_SPARK_WAREHOUSE",
    None,
    ".spark/warehouse",
    group="spark",
    doc="`spark.sql.warehouse.dir` (the CLI makes it `<SEEDTEST_SPARK_DIR>/warehouse`)",
)
SPARK_METASTORE = Var(
    "SEEDTEST_SPARK_METASTORE",
    None,
    ".spark/metastore_db",
    group="spark",
    doc="the Derby metastore (the CLI makes it `<SEEDTEST_SPARK_DIR>/metastore_db`)",
)
SPARK_HOST = Var(
    "SEEDTEST_SPARK_HOST",
    None,
    "localhost",
    group="spark",
    doc="the Thrift server's (or cluster's) host",
)
SPARK_DRIVER_MEMORY = Var(
    "SEEDTEST_SPARK_DRIVER_MEMORY",
    None,
    "2g",
    group="spark",
    doc="`spark.driver.memory`",
)
SPARK_SHUFFLE_PARTITIONS = Var(
    "SEEDTEST_SPARK_SHUFFLE_PARTITIONS",
    None,
    "4",
    group="spark",
    doc="`spark.sql.shuffle.partitions`",
)
SPARK_METHOD = Var(
    "SEEDTEST_SPARK_METHOD",
    None,
    "session",
    group="spark",
    doc="`session`: Spark inside the process; `thrift`: through a Spark Thrift Server"
    " (profile target `thrift`; see docs/spark-thrift.md)",
)
SPARK_PORT = Var(
    "SEEDTEST_SPARK_PORT", None, "10000", group="spark", doc="the Thrift server's port"
)
SPARK_USER = Var(
    "SEEDTEST_SPARK_USER",
    None,
    "seedtest",
    group="spark",
    doc="the user the Thrift sessions are opened as",
)
SPARK_AUTH = Var(
    "SEEDTEST_SPARK_AUTH",
    None,
    "NONE",
    group="spark",
    doc="the Thrift server's authentication: `NONE`, `NOSASL`, `LDAP`, `KERBEROS` or `CUSTOM`"
    " (the server's `hive.server2.authentication`)",
)
SPARK_PASSWORD = Var(
    "DBT_ENV_SECRET_SPARK_PASSWORD",
    None,
    "",
    group="spark",
    doc="the Thrift server's password, with `LDAP` or `CUSTOM` (dbt never prints it)",
)
SPARK_KERBEROS_SERVICE = Var(
    "SEEDTEST_SPARK_KERBEROS_SERVICE",
    None,
    "hive",
    group="spark",
    doc="the Kerberos service name, with `KERBEROS`",
)
SPARK_CONNECT_RETRIES = Var(
    "SEEDTEST_SPARK_CONNECT_RETRIES",
    None,
    "3",
    group="spark",
    doc="dbt's connection retries to the Thrift server (10 s apart) while a cluster starts",
)
SPARK_POLL_SECONDS = Var(
    "SEEDTEST_SPARK_POLL_SECONDS",
    None,
    "1",
    group="spark",
    doc="seconds between dbt's checks whether a statement on the Thrift server is done"
    " (dbt-spark's default, 5, adds seconds to every statement)",
)
# profiles/profiles.yml's connection: the CLI sets these from DATABASE_URL (the password in a
# variable dbt keeps out of its logs); set them yourself only for a plain `dbt` command.
PLAIN_DBT = "set by the CLI from `DATABASE_URL`; set it yourself only for a plain `dbt` command"
REQUIRED = "required: a plain `dbt` command stops when it is unset"
PGHOST = Var("SEEDTEST_PGHOST", None, "", group="plain_dbt", doc=f"host ({REQUIRED}); {PLAIN_DBT}")
PGPORT = Var("SEEDTEST_PGPORT", None, "5432", group="plain_dbt", doc=f"port; {PLAIN_DBT}")
PGUSER = Var("SEEDTEST_PGUSER", None, "", group="plain_dbt", doc=f"role ({REQUIRED}); {PLAIN_DBT}")
PGDATABASE = Var(
    "SEEDTEST_PGDATABASE",
    None,
    "",
    group="plain_dbt",
    doc=f"database ({REQUIRED}); {PLAIN_DBT}",
)
LIBPQ_TLS = "unset: libpq's own `{}` applies"
PGSSLMODE = Var(
    "SEEDTEST_PGSSLMODE",
    None,
    "",
    group="plain_dbt",
    doc=f"`sslmode` ({LIBPQ_TLS.format('PGSSLMODE')}, else `prefer`); {PLAIN_DBT}",
)
PGSSLROOTCERT = Var(
    "SEEDTEST_PGSSLROOTCERT",
    None,
    "",
    group="plain_dbt",
    doc=f"`sslrootcert`, the server's CA file ({LIBPQ_TLS.format('PGSSLROOTCERT')}); {PLAIN_DBT}",
)
PGSSLCERT = Var(
    "SEEDTEST_PGSSLCERT",
    None,
    "",
    group="plain_dbt",
    doc=f"`sslcert`, a client certificate ({LIBPQ_TLS.format('PGSSLCERT')}); {PLAIN_DBT}",
)
PGSSLKEY = Var(
    "SEEDTEST_PGSSLKEY",
    None,
    "",
    group="plain_dbt",
    doc=f"`sslkey`, its key file ({LIBPQ_TLS.format('PGSSLKEY')}); {PLAIN_DBT}",
)
PGPASSWORD = Var(
    "DBT_ENV_SECRET_PGPASSWORD",
    None,
    "",
    group="plain_dbt",
    doc=f"password (dbt never prints a `DBT_ENV_SECRET_` value); {PLAIN_DBT}",
)

# Settings.churn_model_max_age_days and Settings.holdout_share.
CHURN_MODEL_MAX_AGE = IntVar(
    "METRICS_CHURN_MODEL_MAX_AGE_DAYS",
    None,
    "35",
    minimum=1,
    maximum=3650,
    group="scores",
    doc="in `auto` mode, the oldest champion the nightly run still uses (else the previous"
    " champion, else the fixed-weight S)",
)
HOLDOUT_SHARE = Var(
    "SEEDTEST_HOLDOUT_SHARE",
    None,
    "0",
    group="scores",
    doc="share (0 to 1) of the scored users flagged as a stable holdout in `weekly_kpi.kpis`;"
    " `0` writes no flag",
)

# Settings.safety (used by db/write_limits.py, jobs/freshness.py, monitoring/pushgateway.py).
MAX_FAILED_SHARE = Var(
    "SEEDTEST_MAX_FAILED_SHARE",
    None,
    "0.01",
    group="safety",
    doc="the run fails (exit 1) only when more than this share of the users found could not be"
    " written (and more than `SEEDTEST_MAX_FAILED_USERS`); fewer are warnings counted in"
    " `failed=`",
)
MAX_FAILED_USERS = Var(
    "SEEDTEST_MAX_FAILED_USERS",
    None,
    "10",
    group="safety",
    doc="the number of unwritable users a run tolerates whatever the share",
)
ALLOW_STALE = Var(
    "SEEDTEST_ALLOW_STALE",
    None,
    "false",
    group="safety",
    doc="`true` scores even on a stale source, for one run (same as `--allow-stale`)",
)
PUSHGATEWAY_URL = Var(
    "SEEDTEST_PUSHGATEWAY_URL",
    None,
    "",
    group="safety",
    doc="a Prometheus Pushgateway: each run pushes its `seedtest_*` metrics there (a failed"
    " push is a warning); empty pushes nothing",
)

# Every setting, in the order docs/configuration.md lists them (by group).
SETTINGS: tuple[Var, ...] = (
    DATABASE_URL,
    ANCHOR_DATE,
    *VARS,
    CHURN_MODEL_MAX_AGE,
    HOLDOUT_SHARE,
    MAX_FAILED_SHARE,
    MAX_FAILED_USERS,
    ALLOW_STALE,
    PUSHGATEWAY_URL,
    LOCK_WAIT,
    DBT_THREADS,
    DBT_TARGET_PATH,
    DBT_LOG_PATH,
    PROJECT_DIR,
    PROFILE_FILE,
    ENGINE,
    SPARK_SOURCE_SCHEMA,
    SPARK_MASTER,
    SPARK_DIR,
    SPARK_WAREHOUSE,
    SPARK_METASTORE,
    SPARK_HOST,
    SPARK_DRIVER_MEMORY,
    SPARK_SHUFFLE_PARTITIONS,
    SPARK_METHOD,
    SPARK_PORT,
    SPARK_USER,
    SPARK_AUTH,
    SPARK_PASSWORD,
    SPARK_KERBEROS_SERVICE,
    SPARK_CONNECT_RETRIES,
    SPARK_POLL_SECONDS,
    PGHOST,
    PGPORT,
    PGUSER,
    PGDATABASE,
    PGSSLMODE,
    PGSSLROOTCERT,
    PGSSLCERT,
    PGSSLKEY,
    PGPASSWORD,
)
# The groups of docs/configuration.md, in order: key -> heading.
GROUPS: dict[str, str] = {
    "connection": "Database and schemas",
    "window": "The run's days and inputs",
    "scores": "Inactivity, P and S",
    "safety": "Locks, timeouts and the freshness guard",
    "dbt": "dbt and logging",
    "spark": "Apache Spark (`SEEDTEST_ENGINE=spark`)",
    "plain_dbt": "The dbt profile's connection (plain `dbt` commands)",
}

# Each dbt var and the environment variable macros/vars/ reads when it is not
# given with --vars (_var_env_names there; a test checks both agree).
DBT_VAR_ENV: dict[str, str] = {
    "anchor_date": "ANCHOR_DATE",
    **{var.dbt_var: var.env for var in VARS if var.dbt_var is not None},
}
