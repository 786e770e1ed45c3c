"""The process environment: the package's one reader and one writer of it.

load_settings reads every setting from it (through `environ()`) once, before any work. A few
values are not settings of a run but state the process shares with dbt, which runs
in-process and reads its own variables (env_var() in profiles.yml and the macros) from the
environment: the CLI and the development tools point DBT_TARGET_PATH and SEEDTEST_PROJECT_DIR
elsewhere at run time, the run marks a dry run for the macros (SEEDTEST_DRY_RUN), and the
connection settings of dbt's profile are set from DATABASE_URL. The functions below read
those at the moment they are needed, each by its name; `dbt_environment` is the one writer.
A test (tests/python/test_settings_env.py) checks on the syntax tree that no module outside
this package touches os.environ.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from .settings_table import DATABASE_URL, DBT_TARGET_PATH, PROFILE_FILE, PROJECT_DIR

DRY_RUN_ENV = "SEEDTEST_DRY_RUN"


def environ() -> Mapping[str, str]:
    """The process environment, read-only: what load_settings reads the settings from."""
    return os.environ


def dbt_environment(values: Mapping[str, str | None]) -> dict[str, str | None]:
    """Set environment variables for dbt, which runs in-process (None: remove the variable).
    Returns the values they replace (None: was unset): passing those back restores them."""
    replaced = {key: os.environ.get(key) for key in values}
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    return replaced


def dbt_env_var_context() -> dict[str, str]:
    """What dbt's env_var() sees (a copy of the whole environment), for rendering
    profiles.yml outside a dbt invocation."""
    return dict(os.environ)


def database_url() -> str:
    """DATABASE_URL as set ("" when unset: the development database)."""
    return os.environ.get(DATABASE_URL.env, "")


def login_user() -> str:
    """The operating-system user, libpq's default role when DATABASE_URL names none."""
    return os.environ.get("USER", "postgres")


# libpq's own TLS file variables: libpq reads them itself when DATABASE_URL names no file.
LIBPQ_TLS_FILES = ("PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY", "PGSSLCRL")


def libpq_tls_file(variable: str) -> str:
    """The file libpq's `variable` (one of LIBPQ_TLS_FILES) names ("" when unset)."""
    if variable not in LIBPQ_TLS_FILES:
        raise ValueError(f"not a libpq TLS file variable: {variable}")
    return os.environ.get(variable, "")


def project_dir() -> str:
    """SEEDTEST_PROJECT_DIR as set ("" when unset: the checkout)."""
    return os.environ.get(PROJECT_DIR.env, "")


def target_path_setting() -> str:
    """DBT_TARGET_PATH as dbt will read it (the CLI points it at a command's own directory)."""
    return os.environ.get(DBT_TARGET_PATH.env, "").strip() or DBT_TARGET_PATH.default


def profile_file() -> str:
    """SEEDTEST_PROFILE_FILE: where phase timings go ("" when unset: nowhere)."""
    return os.environ.get(PROFILE_FILE.env, "").strip()


def dry_run_marked() -> bool:
    """Whether the run marked this process as a PostgreSQL dry run for dbt's macros."""
    return os.environ.get(DRY_RUN_ENV, "").strip().lower() == "true"


def dbt_colors_set() -> bool:
    """Whether DBT_USE_COLORS is set (then dbt decides itself whether to colour its output)."""
    return "DBT_USE_COLORS" in os.environ
