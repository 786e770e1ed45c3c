"""Where the dbt project is (the checkout, or the image's copy)."""

from __future__ import annotations

from pathlib import Path

from .. import config
from ..errors import UsageError


def project_root() -> Path:
    """The dbt project: SEEDTEST_PROJECT_DIR, else the checkout this package lives in."""
    configured = config.project_dir()
    if configured:
        return Path(configured).resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "dbt_project.yml").is_file():
            return parent
    return Path.cwd()


def checked_project_root() -> Path:
    """project_root(), refused (exit 2, before anything connects) when it holds no dbt project:
    a non-editable install run outside the checkout, without SEEDTEST_PROJECT_DIR."""
    root = project_root()
    if not (root / "dbt_project.yml").is_file():
        raise UsageError(
            f"no dbt project in {root} (no dbt_project.yml): set SEEDTEST_PROJECT_DIR to the "
            "folder that holds it (the checkout the package was installed from)"
        )
    return root


def dbt_target_path() -> Path:
    """Where dbt writes its artifacts: DBT_TARGET_PATH (relative to the project) or target/."""
    configured = Path(config.target_path_setting())
    return configured if configured.is_absolute() else project_root() / configured
