"""Where the dbt project is (the checkout, or the image's copy)."""

from __future__ import annotations

from pathlib import Path

from .. import config


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


def dbt_target_path() -> Path:
    """Where dbt writes its artifacts: DBT_TARGET_PATH (relative to the project) or target/."""
    configured = Path(config.target_path_setting())
    return configured if configured.is_absolute() else project_root() / configured
