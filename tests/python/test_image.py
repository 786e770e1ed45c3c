"""The container image, built and run for real: scripts/test-image.sh builds it with buildah
(from a Debian base made with debootstrap, no registry), then runs `run --dry-run` and `run`
in it as uid 10001 against a PostgreSQL 15 holding synthetic data, and checks that S landed
for exactly the inactive users. Minutes and root: only on request (`pytest -m image`)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from conftest import REPO

pytestmark = pytest.mark.image


def test_image_builds_and_runs_the_nightly_job() -> None:
    if os.geteuid() != 0 or (shutil.which("apt-get") is None and shutil.which("buildah") is None):
        pytest.skip("needs root and buildah (or apt-get to install it)")
    result = subprocess.run(["bash", str(REPO / "scripts" / "test-image.sh")], cwd=REPO,
                            capture_output=True, text=True, check=False)
    failures = [line for line in result.stderr.splitlines() if line.startswith("[FAIL]")]
    assert result.returncode == 0 and not failures, "\n".join(failures) or result.stderr[-3000:]
    assert "[INFO] image test passed: " in result.stdout
