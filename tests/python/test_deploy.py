"""Offline checks of the container image recipe and the Kubernetes manifests.

Every manifest is validated against the Kubernetes OpenAPI schemas shipped with the
`kubernetes-validate` package (strict: unknown fields are errors), for the oldest version the
manifests need and the newest one the package knows. CronJob timeZone is GA since 1.27 and
podFailurePolicy is on by default since 1.26, but the 1.27/1.28 schemas wrongly mark
`onPodConditions` as required in every podFailurePolicy rule (the API server does not), so the
oldest schema checked is 1.29. On top of that, the settings the nightly batch depends on are
asserted one by one. No cluster and no container engine are needed; the image's build-time
`dbt parse` is replayed on a copy of the project laid out as the Dockerfile lays it out.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

kubernetes_validate = pytest.importorskip("kubernetes_validate")

REPO = Path(__file__).resolve().parents[2]
K8S_DIR = REPO / "deploy" / "k8s"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"

NAMESPACE = "seedtest"
CRONJOB_NAME = "seedtest-analytics-nightly"
BACKFILL_NAME = "seedtest-analytics-backfill"
CONFIGMAP_NAME = "seedtest-analytics-config"
SECRET_NAME = "seedtest-analytics-db"
SECRET_KEY = "database-url"
CONTAINER_NAME = "seedtest-analytics"
CONFIG_EXIT_CODE = 2
STALE_EXIT_CODE = 3  # the source is stale: retrying within the hour cannot help

# Custom resources (their CRDs are not part of Kubernetes' schemas; checked by their own
# tests below): apiVersion -> kind.
CUSTOM_RESOURCES = {"monitoring.coreos.com/v1": "PrometheusRule"}

MIN_K8S_VERSION = "1.29.0"  # docs/operations.md states it
K8S_VERSIONS = [MIN_K8S_VERSION, kubernetes_validate.latest_version()]

# Env vars the operator configures (brief of the old jobs + the new ones).
OPERATOR_ENV = {
    "AGG_LOOKBACK_DAYS",
    "AGG_INCLUDE_THETA",
    "INACTIVITY_THRESHOLD_DAYS",
    "KPI_LOOKBACK_DAYS",
    "METRICS_DEFAULT_TARGET",
    "METRICS_USE_BAYESIAN",
    "METRICS_CHURN_HORIZON_DAYS",
    "DEBUG",
    "ACTIVITY_TIMEZONE",
    "SOURCE_SCHEMA",
}


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def load_documents(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


def load_one(name: str) -> dict[str, Any]:
    docs = load_documents(K8S_DIR / name)
    assert len(docs) == 1, f"{name} should hold exactly one resource"
    return docs[0]


def manifest_files() -> list[Path]:
    files = sorted(p for p in K8S_DIR.glob("*.y*ml") if p.name != "kustomization.yaml")
    assert files, "no manifests found in deploy/k8s"
    return files


def job_spec(resource: dict[str, Any]) -> dict[str, Any]:
    if resource["kind"] == "CronJob":
        return resource["spec"]["jobTemplate"]["spec"]
    assert resource["kind"] == "Job"
    return resource["spec"]


def pod_spec(resource: dict[str, Any]) -> dict[str, Any]:
    return job_spec(resource)["template"]["spec"]


def main_container(resource: dict[str, Any]) -> dict[str, Any]:
    containers = pod_spec(resource)["containers"]
    assert len(containers) == 1
    assert containers[0]["name"] == CONTAINER_NAME
    return containers[0]


# The nightly CronJob and the one-off Jobs applied by hand share one pod template (only args
# differ) and the artifacts volume; the weekly train-churn CronJob runs the backtest image
# and keeps its dbt artifacts in /tmp.
NIGHTLY_FILES = ["cronjob.yaml", "backfill-job.yaml", "retry-job.yaml", "rebuild-job.yaml"]
TRAIN_FILE = "train-churn-cronjob.yaml"


def nightly_workloads() -> list[dict[str, Any]]:
    return [load_one(name) for name in NIGHTLY_FILES]


def workloads() -> list[dict[str, Any]]:
    return [*nightly_workloads(), load_one(TRAIN_FILE)]


def workload_id(resource: dict[str, Any]) -> str:
    return str(resource["metadata"]["name"]).removeprefix("seedtest-analytics-")


def parse_cpu(value: str | int | float) -> float:
    text = str(value)
    if text.endswith("m"):
        return float(text[:-1]) / 1000
    return float(text)


_MEMORY_UNITS = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "": 1,
}


def parse_memory(value: str | int) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T|)", str(value))
    assert match, f"unexpected memory quantity {value!r}"
    return int(float(match.group(1)) * _MEMORY_UNITS[match.group(2)])


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        pending += line
        keyword, _, rest = pending.strip().partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        pending = ""
    assert not pending, "Dockerfile ends with a dangling line continuation"
    return instructions


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    starts = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert starts, "Dockerfile has no FROM"
    return instructions[starts[-1]:]


def dockerfile_args() -> dict[str, str]:
    args: dict[str, str] = {}
    for keyword, rest in dockerfile_instructions():
        if keyword == "ARG" and "=" in rest:
            key, _, value = rest.partition("=")
            args[key.strip()] = value.strip()
    return args


def image_env() -> dict[str, str]:
    """ENV of the final stage (KEY=VALUE form)."""
    env: dict[str, str] = {}
    for keyword, rest in final_stage():
        if keyword != "ENV":
            continue
        for token in shlex.split(rest):
            assert "=" in token, f"use the ENV KEY=VALUE form (got {token!r})"
            key, _, value = token.partition("=")
            env[key] = value
    return env


def image_user() -> str:
    users = [rest for keyword, rest in final_stage() if keyword == "USER"]
    assert users, "the runtime stage must switch to a non-root USER"
    return users[-1]


def dbt_parse_run() -> tuple[int, str]:
    for index, (keyword, rest) in enumerate(final_stage()):
        if keyword == "RUN" and re.search(r"\bdbt\s+parse\b", rest):
            return index, rest
    raise AssertionError("the runtime stage must run `dbt parse` at build time")


def is_under(path: str, directory: str) -> bool:
    return PurePosixPath(directory) in (PurePosixPath(path), *PurePosixPath(path).parents)


# --------------------------------------------------------------------------------------------
# schema validation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: p.name)
def test_manifest_validates_against_kubernetes_schema(path: Path, version: str) -> None:
    docs = load_documents(path)
    assert docs, f"{path.name} is empty"
    for doc in docs:
        if doc["apiVersion"] in CUSTOM_RESOURCES:  # not in Kubernetes' own schemas: see below
            assert doc["kind"] == CUSTOM_RESOURCES[doc["apiVersion"]]
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(part) for part in exc.path)
            pytest.fail(f"{path.name} ({doc.get('kind')}) invalid for {version} at {where}: "
                        f"{exc.message}")
        assert doc["metadata"]["namespace"] == NAMESPACE
        assert doc["metadata"]["labels"]["app.kubernetes.io/name"] == "seedtest-analytics"


def test_validator_rejects_unknown_fields_and_bad_types() -> None:
    """The schema check above is not a no-op: strict mode catches typos and wrong types."""
    version = K8S_VERSIONS[-1]
    typo = load_one("cronjob.yaml")
    typo["spec"]["concurrencyPolicyy"] = "Forbid"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, version, strict=True)
    bad_type = load_one("backfill-job.yaml")
    bad_type["spec"]["backoffLimit"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad_type, version, strict=True)


def test_kustomization_lists_the_scheduled_resources_only() -> None:
    """The CronJobs, their ConfigMap and volume, and the alert rules; not the Secret (made out
    of band) nor the one-off Jobs (applied by hand)."""
    kustomization = load_one("kustomization.yaml")
    assert kustomization["kind"] == "Kustomization"
    assert kustomization.get("namespace") == NAMESPACE
    resources = kustomization["resources"]
    assert sorted(resources) == ["configmap.yaml", "cronjob.yaml", "prometheusrule.yaml",
                                 "pvc.yaml", "train-churn-cronjob.yaml"]
    for name in resources:
        assert (K8S_DIR / name).is_file(), name
    for name in ("secret.example.yaml", *NIGHTLY_FILES[1:]):
        assert name not in resources
    # Every image the listed resources run has its kustomize image entry.
    entries = {entry["name"] for entry in kustomization["images"]}
    for name in resources:
        for doc in load_documents(K8S_DIR / name):
            if doc["kind"] in ("CronJob", "Job"):
                assert main_container(doc)["image"].split(":")[0] in entries, name


# --------------------------------------------------------------------------------------------
# CronJob and Job settings
# --------------------------------------------------------------------------------------------


def test_cronjob_schedule_and_policies() -> None:
    cronjob = load_one("cronjob.yaml")
    assert cronjob["kind"] == "CronJob"
    assert cronjob["apiVersion"] == "batch/v1"
    assert cronjob["metadata"]["name"] == CRONJOB_NAME
    spec = cronjob["spec"]
    fields = spec["schedule"].split()
    assert len(fields) == 5, "schedule must be a 5-field cron expression"
    assert not spec["schedule"].startswith(("TZ=", "CRON_TZ=")), "use spec.timeZone instead"
    assert spec["timeZone"] == "Asia/Seoul"
    ZoneInfo(spec["timeZone"])
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] > 0
    assert spec["successfulJobsHistoryLimit"] >= 1
    assert spec["failedJobsHistoryLimit"] >= 1
    assert spec.get("suspend", False) is False
    assert main_container(cronjob)["args"] == ["run"]


def test_backfill_job_arguments() -> None:
    job = load_one("backfill-job.yaml")
    assert job["kind"] == "Job"
    assert job["apiVersion"] == "batch/v1"
    assert job["metadata"]["name"] == BACKFILL_NAME
    args = main_container(job)["args"]
    assert args[0] == "backfill"
    start = dt.date.fromisoformat(args[args.index("--start") + 1])
    end = dt.date.fromisoformat(args[args.index("--end") + 1])
    assert start <= end
    assert args == ["backfill", "--start", "2025-10-01", "--end", "2025-10-31"]


@pytest.mark.parametrize("resource", workloads(), ids=workload_id)
def test_job_limits(resource: dict[str, Any]) -> None:
    spec = job_spec(resource)
    assert 0 < spec["backoffLimit"] <= 3
    assert spec["activeDeadlineSeconds"] > 0
    assert spec["ttlSecondsAfterFinished"] > 0
    assert pod_spec(resource)["restartPolicy"] == "Never"


@pytest.mark.parametrize("resource", workloads(), ids=workload_id)
def test_config_errors_fail_the_job_without_retries(resource: dict[str, Any]) -> None:
    """Exit 2 (bad configuration) -> FailJob; exit 1 (run-time failure) keeps the retries."""
    spec = job_spec(resource)
    rules = spec["podFailurePolicy"]["rules"]
    # podFailurePolicy is only allowed with restartPolicy Never.
    assert pod_spec(resource)["restartPolicy"] == "Never"
    fail_job = [
        rule for rule in rules
        if rule["action"] == "FailJob" and "onExitCodes" in rule
    ]
    assert len(fail_job) == 1
    on_exit = fail_job[0]["onExitCodes"]
    assert on_exit["operator"] == "In"
    assert on_exit["values"] == [CONFIG_EXIT_CODE, STALE_EXIT_CODE]
    assert on_exit.get("containerName", CONTAINER_NAME) == CONTAINER_NAME
    for rule in rules:
        codes = rule.get("onExitCodes")
        if codes and codes["operator"] == "In":
            assert 1 not in codes["values"], "exit 1 is a run-time failure: let it retry"


@pytest.mark.parametrize("resource", workloads(), ids=workload_id)
def test_pod_security(resource: dict[str, Any]) -> None:
    pod = pod_spec(resource)
    pod_ctx = pod["securityContext"]
    assert pod_ctx["runAsNonRoot"] is True
    assert pod_ctx["runAsUser"] == 10001
    assert pod_ctx["fsGroup"] == 10001
    assert pod_ctx["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod.get("hostNetwork", False) is False
    assert pod.get("automountServiceAccountToken") is False

    ctx = main_container(resource)["securityContext"]
    assert ctx.get("runAsNonRoot", pod_ctx["runAsNonRoot"]) is True
    assert ctx.get("runAsUser", pod_ctx["runAsUser"]) == 10001
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx.get("privileged", False) is False
    assert ctx["capabilities"]["drop"] == ["ALL"]
    assert not ctx["capabilities"].get("add")
    assert ctx["seccompProfile"]["type"] == "RuntimeDefault"


@pytest.mark.parametrize("resource", workloads(), ids=workload_id)
def test_resources(resource: dict[str, Any]) -> None:
    resources = main_container(resource)["resources"]
    requests, limits = resources["requests"], resources["limits"]
    assert parse_cpu(requests["cpu"]) == 0.5
    assert parse_memory(requests["memory"]) == 2**30
    assert parse_cpu(limits["cpu"]) == 2
    assert parse_memory(limits["memory"]) == 2 * 2**30
    assert parse_cpu(requests["cpu"]) <= parse_cpu(limits["cpu"])
    assert parse_memory(requests["memory"]) <= parse_memory(limits["memory"])


@pytest.mark.parametrize("resource", workloads(), ids=workload_id)
def test_database_url_from_secret_and_config_from_configmap(resource: dict[str, Any]) -> None:
    container = main_container(resource)
    env = {item["name"]: item for item in container.get("env", [])}
    ref = env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": SECRET_NAME, "key": SECRET_KEY}
    assert "value" not in env["DATABASE_URL"]
    for item in container.get("env", []):
        assert "PASSWORD" not in item["name"] or "valueFrom" in item
    sources = [source["configMapRef"]["name"] for source in container["envFrom"]]
    assert sources == [CONFIGMAP_NAME]
    assert load_one("configmap.yaml")["metadata"]["name"] == CONFIGMAP_NAME


def effective_env(resource: dict[str, Any]) -> dict[str, str]:
    """The container's environment: the image's, the ConfigMap's, the container's own."""
    container = main_container(resource)
    effective = dict(image_env())
    effective.update(load_one("configmap.yaml")["data"])
    effective.update({e["name"]: e["value"] for e in container.get("env", []) if "value" in e})
    return effective


def writable_mounts(resource: dict[str, Any], kind: str) -> list[str]:
    """Mount paths of the container's writable volumes of `kind` (emptyDir, ...)."""
    volumes = {volume["name"]: volume for volume in pod_spec(resource)["volumes"]}
    return [
        mount["mountPath"] for mount in main_container(resource)["volumeMounts"]
        if kind in volumes[mount["name"]] and not mount.get("readOnly", False)
    ]


@pytest.mark.parametrize("resource", nightly_workloads(), ids=workload_id)
def test_dbt_target_is_on_the_persistent_volume(resource: dict[str, Any]) -> None:
    """dbt's artifacts of the last run (run_results.json, manifest.json, sources.json) outlive
    the pod, so `dbt-retry` (dbt retry) works after a failed night: DBT_TARGET_PATH is on the
    PersistentVolumeClaim of pvc.yaml, which the kustomization installs."""
    claim = load_one("pvc.yaml")
    assert claim["kind"] == "PersistentVolumeClaim"
    assert claim["metadata"]["namespace"] == NAMESPACE
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    volumes = [v for v in pod_spec(resource)["volumes"] if "persistentVolumeClaim" in v]
    assert [v["persistentVolumeClaim"]["claimName"] for v in volumes] == [
        claim["metadata"]["name"]
    ]
    persistent = writable_mounts(resource, "persistentVolumeClaim")
    target = effective_env(resource)["DBT_TARGET_PATH"]
    assert any(is_under(target, mount) for mount in persistent), (target, persistent)
    # The dry run keeps its artifacts next to the real ones (runs.py), on the volume too.
    assert any(is_under(str(PurePosixPath(target).parent), mount) for mount in persistent)


def test_timeouts_end_a_stuck_night_before_the_job_deadline() -> None:
    """A statement that never ends is stopped by the statement timeout, with a line saying
    so, before Kubernetes kills the pod at activeDeadlineSeconds without a word."""
    from seedtest_analytics.config import load_safety
    from seedtest_analytics.db.timeouts import load_timeouts

    data = load_one("configmap.yaml")["data"]
    timeouts = load_timeouts(load_safety(data))
    deadline = job_spec(load_one("cronjob.yaml"))["activeDeadlineSeconds"]
    assert 0 < timeouts.lock_seconds < timeouts.statement_seconds < deadline


@pytest.mark.parametrize("resource", workloads(), ids=workload_id)
def test_dbt_paths_are_writable(resource: dict[str, Any]) -> None:
    """With a read-only root filesystem, dbt's logs/ (and HOME) must sit on an emptyDir, and
    its target/ on a writable volume, at the paths the image or the container configures."""
    effective = effective_env(resource)
    writable = writable_mounts(resource, "emptyDir")
    assert writable, "no writable emptyDir mounted"
    for name in ("DBT_LOG_PATH", "HOME"):
        path = effective[name]
        assert path.startswith("/"), f"{name} must be absolute (got {path!r})"
        assert any(is_under(path, mount) for mount in writable), (
            f"{name}={path} is not on a writable emptyDir ({writable})"
        )


@pytest.mark.parametrize("name", NIGHTLY_FILES[1:])
def test_cronjob_and_the_manual_jobs_share_the_same_pod_spec(name: str) -> None:
    cronjob, job = load_one("cronjob.yaml"), load_one(name)
    cron_pod, job_pod = pod_spec(cronjob), pod_spec(job)
    # The security settings, one by one (clear failure messages) ...
    assert cron_pod["securityContext"] == job_pod["securityContext"]
    assert main_container(cronjob)["securityContext"] == main_container(job)["securityContext"]
    assert cron_pod["volumes"] == job_pod["volumes"]
    assert cron_pod["restartPolicy"] == job_pod["restartPolicy"]
    assert job_spec(cronjob)["podFailurePolicy"] == job_spec(job)["podFailurePolicy"]
    assert job_spec(cronjob)["backoffLimit"] == job_spec(job)["backoffLimit"]
    # ... and then everything else but the arguments.
    left, right = copy.deepcopy(cron_pod), copy.deepcopy(job_pod)
    for pod in (left, right):
        for container in pod["containers"]:
            container.pop("args", None)
    assert left == right


def test_train_churn_shares_the_nightly_pod_spec_but_image_and_artifacts() -> None:
    """The weekly train-churn CronJob: the nightly's pod template, except its image (the one
    with the backtest extra), its command, and no artifacts volume (only the nightly commands
    feed dbt-retry: its dbt target/ stays in /tmp, the image's DBT_TARGET_PATH)."""
    cronjob, train = load_one("cronjob.yaml"), load_one(TRAIN_FILE)
    assert job_spec(cronjob)["podFailurePolicy"] == job_spec(train)["podFailurePolicy"]
    left, right = copy.deepcopy(pod_spec(cronjob)), copy.deepcopy(pod_spec(train))
    left["volumes"] = [v for v in left["volumes"] if "persistentVolumeClaim" not in v]
    (nightly,), (training,) = left["containers"], right["containers"]
    nightly["volumeMounts"] = [m for m in nightly["volumeMounts"] if m["name"] != "dbt-artifacts"]
    nightly["env"] = [e for e in nightly["env"] if e["name"] != "DBT_TARGET_PATH"]
    assert training["image"].split(":")[0] == "seedtest-analytics-backtest"
    assert training["image"].split(":")[1] == nightly["image"].split(":")[1]
    for container in (nightly, training):
        for key in ("args", "command", "image"):
            container.pop(key, None)
    assert left == right
    assert not [v for v in pod_spec(train)["volumes"] if "persistentVolumeClaim" in v]
    assert is_under(effective_env(train)["DBT_TARGET_PATH"], "/tmp")


def test_train_churn_runs_weekly_after_the_nightly_run() -> None:
    cronjob, train = load_one("cronjob.yaml"), load_one(TRAIN_FILE)
    spec = train["spec"]
    minute, hour, day, month, weekday = spec["schedule"].split()
    assert (day, month) == ("*", "*") and weekday.isdigit(), "once a week"
    nightly_minute, nightly_hour = cronjob["spec"]["schedule"].split()[:2]
    assert (int(hour), int(minute)) > (int(nightly_hour), int(nightly_minute))
    assert spec["timeZone"] == cronjob["spec"]["timeZone"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec.get("suspend", False) is False


def train_churn_arguments(tmp_path: Path, timezone: str) -> list[str]:
    """The arguments the train-churn CronJob's command gives seedtest-analytics, run by the
    shell as the pod runs it, with a stand-in seedtest-analytics that prints them."""
    container = main_container(load_one(TRAIN_FILE))
    stand_in = tmp_path / "seedtest-analytics"
    stand_in.write_text('#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n', encoding="utf-8")
    stand_in.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "ACTIVITY_TIMEZONE": timezone}
    result = subprocess.run([*container["command"], *container["args"]], env=env,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


@pytest.mark.parametrize("timezone", ["Asia/Seoul", "Pacific/Kiritimati", "Pacific/Niue"])
def test_train_churn_learns_until_yesterday_in_the_activity_timezone(
    tmp_path: Path, timezone: str
) -> None:
    """`--until` is yesterday in ACTIVITY_TIMEZONE when the pod starts (UTC+14 and UTC-11:
    at most times of day one of them is on another date than UTC)."""
    def yesterday() -> str:
        return (dt.datetime.now(ZoneInfo(timezone)).date() - dt.timedelta(days=1)).isoformat()

    before = yesterday()
    args = train_churn_arguments(tmp_path, timezone)
    assert args[:2] == ["train-churn", "--until"] and args[3:] == ["--every", "1"]
    assert args[2] in {before, yesterday()}


@pytest.mark.parametrize(("name", "args"), [("retry-job.yaml", ["dbt-retry"]),
                                            ("rebuild-job.yaml", ["rebuild"])])
def test_retry_and_rebuild_jobs(name: str, args: list[str]) -> None:
    job = load_one(name)
    assert job["kind"] == "Job"
    assert job["metadata"]["name"] == f"seedtest-analytics-{args[0].removeprefix('dbt-')}"
    assert main_container(job)["args"] == args
    # Applied by hand with the nightly run suspended (the header says how), like backfill.
    text = (K8S_DIR / name).read_text(encoding="utf-8")
    assert "patch cronjob seedtest-analytics-nightly -p '{\"spec\":{\"suspend\":true}}'" in text
    assert f"kubectl apply -f deploy/k8s/{name}" in text


def test_every_job_command_is_a_cli_command() -> None:
    """The commands the manifests run exist in seedtest-analytics (rebuild comes with the
    operations work: until it is merged, it is the one command allowed to be missing)."""
    from seedtest_analytics.cli import build_parser

    parser = build_parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    commands = set(actions[0].choices)
    for resource in workloads():
        container = main_container(resource)
        words = " ".join([*container.get("command", []), *container["args"]]).split()
        command = words[words.index("seedtest-analytics") + 1] if "command" in container \
            else words[0]
        assert command in commands or command == "rebuild", (workload_id(resource), command)


# --------------------------------------------------------------------------------------------
# The image with the backtest extra (train-churn)
# --------------------------------------------------------------------------------------------


def lock_names(path: Path) -> dict[str, str]:
    names = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            requirement, _, digest = line.partition(" --hash=sha256:")
            name, _, version = requirement.partition("==")
            assert version and re.fullmatch(r"[0-9a-f]{64}", digest), line
            names[re.sub(r"[-_.]+", "-", name).lower()] = version
    return names


def test_backtest_lock_pins_what_the_extra_adds() -> None:
    """`--build-arg EXTRAS=backtest` installs requirements-backtest.lock on top of
    requirements.lock: it pins every requirement of the extra, and nothing the runtime lock
    pins already."""
    runtime = lock_names(REPO / "requirements.lock")
    extra = lock_names(REPO / "requirements-backtest.lock")
    assert not set(runtime) & set(extra)
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    for text in pyproject["project"]["optional-dependencies"]["backtest"]:
        name = re.split(r"[<>=!~ \[;]", text, maxsplit=1)[0]
        assert re.sub(r"[-_.]+", "-", name).lower() in extra, name
    builder = stage("builder")
    assert ("ARG", 'EXTRAS=""') in builder
    loop = [rest for keyword, rest in builder if keyword == "RUN" and "EXTRAS" in rest]
    assert loop and 'requirements-${extra}.lock' in loop[0] and "--require-hashes" in loop[0]


# --------------------------------------------------------------------------------------------
# Alert rules (PrometheusRule)
# --------------------------------------------------------------------------------------------

# The series the rules may use: kube-state-metrics' Job metrics, and the run metrics that
# seedtest-analytics pushes (one series per command, label `command`).
KUBE_STATE_METRICS = {"kube_job_failed", "kube_job_status_failed", "kube_job_status_succeeded",
                      "kube_job_owner", "kube_job_complete"}
PUSHED_METRICS = {"seedtest_last_success_timestamp_seconds", "seedtest_run_duration_seconds",
                  "seedtest_users_scored", "seedtest_users_failed", "seedtest_rows_written",
                  "seedtest_exit_class"}

_DURATION = r"^([0-9]+(ms|s|m|h|d|w|y))+$"
PROMETHEUS_RULE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": {
            "type": "object", "required": ["name", "namespace", "labels"],
            "properties": {"name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                           "namespace": {"const": NAMESPACE},
                           "labels": {"type": "object",
                                      "additionalProperties": {"type": "string"}}},
        },
        "spec": {
            "type": "object", "required": ["groups"], "additionalProperties": False,
            "properties": {"groups": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["name", "rules"], "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "interval": {"type": "string", "pattern": _DURATION},
                    "rules": {"type": "array", "minItems": 1, "items": {
                        "type": "object", "required": ["alert", "expr"],
                        "additionalProperties": False,
                        "properties": {
                            "alert": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_]*$"},
                            "expr": {"type": "string", "minLength": 1},
                            "for": {"type": "string", "pattern": _DURATION},
                            "labels": {"type": "object", "required": ["severity"],
                                       "properties": {"severity": {
                                           "enum": ["critical", "warning", "info"]}},
                                       "additionalProperties": {"type": "string"}},
                            "annotations": {"type": "object", "required": ["summary"],
                                            "additionalProperties": {"type": "string"}},
                        },
                    }},
                },
            }}},
        },
    },
}

PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
                "or", "unless", "offset", "inf", "nan"}


def promql_metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: label matchers, grouping label lists, range
    durations and strings removed, then every name that is not a function call or keyword."""
    depth = 0
    for char in expr:
        depth += {"(": 1, ")": -1}.get(char, 0)
        assert depth >= 0, f"unbalanced parentheses in {expr!r}"
    assert depth == 0, f"unbalanced parentheses in {expr!r}"
    assert expr.count("{") == expr.count("}"), f"unbalanced braces in {expr!r}"
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"(?<![A-Za-z0-9_:])[0-9][0-9.]*[a-z]*", " ", text)  # numbers, durations
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group(0)
        if text[match.end():].lstrip().startswith("(") or word.lower() in PROMQL_WORDS:
            continue
        names.add(word)
    return names


def alert_rules() -> dict[str, dict[str, Any]]:
    rule = load_one("prometheusrule.yaml")
    return {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}


def test_prometheus_rule_structure() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    rule = load_one("prometheusrule.yaml")
    jsonschema.validate(rule, PROMETHEUS_RULE_SCHEMA)
    broken = copy.deepcopy(rule)
    broken["spec"]["groups"][0]["rules"][0]["exp"] = broken["spec"]["groups"][0]["rules"][0].pop(
        "expr")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, PROMETHEUS_RULE_SCHEMA)
    assert len(alert_rules()) == sum(len(g["rules"]) for g in rule["spec"]["groups"])


def test_alert_expressions_name_only_known_metrics() -> None:
    known = KUBE_STATE_METRICS | PUSHED_METRICS
    for name, rule in alert_rules().items():
        used = promql_metric_names(rule["expr"])
        assert used, f"{name} selects no metric"
        assert used <= known, f"{name} uses unknown metrics {sorted(used - known)}"
    # the check is not a no-op
    assert promql_metric_names('max by (command) (seedtest_last_sucess{command="run"}) > 0'
                               ) == {"seedtest_last_sucess"}
    assert promql_metric_names("time() - max(x_total[5m] offset 1h) > 26 * 3600") == {"x_total"}


def test_job_failed_alert_covers_every_job_of_the_project() -> None:
    """kube-state-metrics names a CronJob's Jobs <cronjob>-<minutes since the epoch>: the
    rule's job_name selector matches them, the one-off Jobs and the manual runs."""
    rule = alert_rules()["SeedtestAnalyticsJobFailed"]
    assert {"kube_job_failed"} <= promql_metric_names(rule["expr"])
    assert 'condition="true"' in rule["expr"]
    selector = re.search(r'job_name=~"([^"]+)"', rule["expr"])
    assert selector
    pattern = re.compile(selector.group(1))
    names = [resource["metadata"]["name"] + ("-29405520" if resource["kind"] == "CronJob" else "")
             for resource in workloads()]
    names.append("seedtest-analytics-manual-20261206-101500")
    for job_name in names:
        assert pattern.fullmatch(job_name), job_name
    assert not pattern.fullmatch("other-app-nightly-29405520")
    assert 'namespace="seedtest"' in rule["expr"]
    retried = alert_rules()["SeedtestAnalyticsPodRetried"]
    assert "kube_job_status_failed" in promql_metric_names(retried["expr"])


def test_no_success_alert_fires_after_26_hours() -> None:
    rule = alert_rules()["SeedtestAnalyticsNoSuccess26h"]
    assert promql_metric_names(rule["expr"]) == {"seedtest_last_success_timestamp_seconds"}
    assert 'command="run"' in rule["expr"]
    threshold = re.search(r">\s*([0-9 *]+)$", rule["expr"].strip())
    assert threshold
    assert eval(threshold.group(1), {"__builtins__": {}}) == 26 * 3600  # digits and *
    assert rule["expr"].strip().startswith("time() -")
    absent = alert_rules()["SeedtestAnalyticsNoSuccessMetric"]
    assert "absent(" in absent["expr"] and absent["for"] == "26h"


# --------------------------------------------------------------------------------------------
# ConfigMap and Secret
# --------------------------------------------------------------------------------------------


def test_configmap_holds_the_operator_settings() -> None:
    """Every setting the package defines (config.VARS), except the development switch
    SEEDTEST_DBT_TESTS, and nothing else; DATABASE_URL comes from the Secret."""
    from seedtest_analytics.config import DBT_TESTS, VARS

    data = load_one("configmap.yaml")["data"]
    settings = {var.env for var in VARS} - {DBT_TESTS.env}
    assert settings >= OPERATOR_ENV
    assert set(data) == settings, (sorted(settings - set(data)), sorted(set(data) - settings))
    assert "DATABASE_URL" not in data, "DATABASE_URL belongs in the Secret"
    assert all(isinstance(value, str) for value in data.values())


def test_configmap_values_pass_the_package_validation() -> None:
    """The shipped values must not make the job exit 2 on its first night (that they are the
    defaults, or documented overrides, is test_settings.py's)."""
    from seedtest_analytics.config import load_settings

    settings = load_settings(dict(load_one("configmap.yaml")["data"]))
    assert settings.activity_timezone == "Asia/Seoul"


def test_secret_is_only_an_example() -> None:
    secret = load_one("secret.example.yaml")
    assert secret["kind"] == "Secret"
    assert secret["metadata"]["name"] == SECRET_NAME
    url = secret["stringData"][SECRET_KEY]
    assert url.startswith(("postgresql://", "postgresql+psycopg2://"))
    assert "CHANGE_ME" in url
    assert ".invalid" in url
    assert "EXAMPLE" in (K8S_DIR / "secret.example.yaml").read_text(encoding="utf-8")


def test_example_secret_url_is_accepted_by_the_package() -> None:
    from seedtest_analytics.db.connection import parse_database_url

    params = parse_database_url(load_one("secret.example.yaml")["stringData"][SECRET_KEY])
    assert params.port == 5432
    assert params.sslmode == "require"


# --------------------------------------------------------------------------------------------
# Dockerfile
# --------------------------------------------------------------------------------------------


def test_dockerfile_runs_as_the_pod_user() -> None:
    user = image_user()
    uid = user.split(":")[0]
    assert uid.isdigit(), "USER must be numeric so runAsNonRoot can verify it"
    assert uid != "0"
    for resource in workloads():
        assert int(uid) == pod_spec(resource)["securityContext"]["runAsUser"]
        ctx = main_container(resource)["securityContext"]
        assert int(uid) == ctx.get("runAsUser", int(uid))


def test_dockerfile_entrypoint_is_the_console_script() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    scripts = pyproject["project"]["scripts"]
    stage = final_stage()
    entrypoint = [rest for keyword, rest in stage if keyword == "ENTRYPOINT"][-1]
    cmd = [rest for keyword, rest in stage if keyword == "CMD"][-1]
    assert yaml.safe_load(entrypoint) == ["seedtest-analytics"]
    assert "seedtest-analytics" in scripts
    assert yaml.safe_load(cmd) == ["run"]


def test_dockerfile_environment() -> None:
    env = image_env()
    # dbt writes only under /tmp (an emptyDir in the pods): the root filesystem is read-only.
    for name in ("DBT_TARGET_PATH", "DBT_LOG_PATH"):
        assert is_under(env[name], "/tmp"), name
    # Nothing operator-tunable is baked into the image: that is the ConfigMap's job.
    assert not (set(env) & (OPERATOR_ENV | {"DATABASE_URL"}))


def stage(name: str) -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    for index, (keyword, rest) in enumerate(instructions):
        if keyword == "FROM" and rest.split()[-1] == name:
            end = next(
                (j for j in range(index + 1, len(instructions)) if instructions[j][0] == "FROM"),
                len(instructions),
            )
            return instructions[index:end]
    raise AssertionError(f"Dockerfile has no stage named {name}")


PROJECT_FILES = REPO / "dbt-project-files.txt"


def project_paths() -> list[str]:
    """The paths the `project` stage collects into the image's dbt project directory: the
    list in dbt-project-files.txt, which the stage's loop reads."""
    loops = [rest for keyword, rest in stage("project") if keyword == "RUN"]
    assert any(PROJECT_FILES.name in rest and "for path in" in rest for rest in loops), (
        f"the project stage must collect the dbt project from {PROJECT_FILES.name}"
    )
    lines = PROJECT_FILES.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_every_file_dbt_reads_at_the_project_root_is_shipped() -> None:
    """dbt reads these files beside dbt_project.yml; each one present must be in the image
    (selectors.yml was once left out: every command failed with `Could not find selector`)."""
    paths = set(project_paths())
    for name in ("dbt_project.yml", "selectors.yml", "packages.yml", "dependencies.yml"):
        if (REPO / name).exists():
            assert name in paths, f"{name} is not copied into the image"


def test_dockerfile_copies_the_dbt_project_to_the_project_dir() -> None:
    project_dir = image_env()["SEEDTEST_PROJECT_DIR"]
    copies = [rest for keyword, rest in final_stage() if keyword == "COPY"]
    assert "--from=project /project/ /app/" in copies
    assert project_dir == "/app"
    paths = set(project_paths())
    assert {"dbt_project.yml", "profiles"} <= paths
    # Every path dbt_project.yml points at goes into the image.
    project = yaml.safe_load((REPO / "dbt_project.yml").read_text(encoding="utf-8"))
    for key in ("model-paths", "macro-paths", "test-paths", "seed-paths", "analysis-paths",
                "snapshot-paths"):
        for path in project.get(key, []):
            assert path.rstrip("/") in paths, f"{key} {path} is not copied into the image"
    assert "tests/python" not in paths


def test_dockerignore() -> None:
    ignored = {
        line.strip() for line in DOCKERIGNORE.read_text("utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for entry in (".venv", ".pgdata", "target", "logs", ".git"):
        assert entry in ignored, f".dockerignore should exclude {entry}"
    assert "**/__pycache__" in ignored or "__pycache__" in ignored
    for needed in (*project_paths(), "src", "pyproject.toml", "README.md"):
        assert needed not in ignored, f"{needed} is used by the build but excluded"


def test_dockerfile_copy_sources_exist() -> None:
    missing = []
    for keyword, rest in dockerfile_instructions():
        if keyword == "COPY" and "--from=" not in rest:
            *sources, _ = shlex.split(rest)
            missing += [source for source in sources if not (REPO / source).exists()]
    assert not missing, f"the image build would fail: missing {missing}"


def test_dockerfile_parses_the_dbt_project_at_build_time() -> None:
    index, command = dbt_parse_run()
    before = final_stage()[:index]
    assert "--project-dir /app" in command
    assert "--profiles-dir /app/profiles" in command
    # After the project is copied, and as the runtime (non-root) user.
    assert any(k == "COPY" and "/app" in r for k, r in before)
    assert any(k == "USER" for k, _ in before)
    # Dummy connection values for the variables the package hands to profiles.yml.
    from seedtest_analytics.db.connection import ConnectionParams

    handed = ConnectionParams("h", 5432, "u", "p", "d").dbt_env()
    # the TLS ones are empty without TLS parameters in the URL: the profile then passes none
    expected = {key for key, value in handed.items() if value}
    dummies = build_parse_env(command)
    assert expected <= set(dummies), f"dbt parse lacks {sorted(expected - set(dummies))}"
    profiles = (REPO / "profiles" / "profiles.yml").read_text(encoding="utf-8")
    used = set(re.findall(r"""env_var\(\s*['"]([A-Z][A-Z0-9_]*)['"]""", profiles))
    assert set(handed) <= used, f"profiles.yml does not read {sorted(set(handed) - used)}"


def build_parse_env(command: str) -> dict[str, str]:
    """The VAR=value assignments that prefix `dbt parse` in the Dockerfile."""
    prefix = re.split(r"\bdbt\s+parse\b", command)[0]
    return dict(re.findall(r"\b([A-Z][A-Z0-9_]*)=(\S+)", prefix))


# `dbt ls --project-dir APP --profiles-dir APP/profiles --selector NAME --quiet` for each NAME,
# through dbt's command-line entry point in one process; prints {name: [success, nodes listed]}.
LIST_SELECTORS = """
import json, sys
from dbt.cli.main import dbtRunner
app, names = sys.argv[1], sys.argv[2:]
runner, counts = dbtRunner(), {}
for name in names:
    result = runner.invoke(["ls", "--project-dir", app, "--profiles-dir", app + "/profiles",
                            "--selector", name, "--quiet"])
    counts[name] = [bool(result.success), len(result.result or [])]
print(json.dumps(counts))
"""


def test_build_time_dbt_parse_succeeds(tmp_path: Path) -> None:
    """Replay the image build's `dbt parse`: the project laid out as in the image (only the
    collected paths), the image's env with /app and /tmp relocated, no database."""
    dbt = Path(sys.executable).with_name("dbt")
    if not dbt.exists():
        pytest.skip("dbt is not installed next to this Python")
    app, scratch = tmp_path / "app", tmp_path / "tmp"
    app.mkdir()
    scratch.mkdir()
    for path in project_paths():
        source = REPO / path
        if source.is_dir():
            shutil.copytree(source, app / path, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.is_file():
            shutil.copy2(source, app / path)
    before = sorted(p.relative_to(app) for p in app.rglob("*"))

    def relocate(value: str) -> str:
        if value.startswith("/app"):
            return str(app) + value[len("/app"):]
        if value.startswith("/tmp"):
            return str(scratch) + value[len("/tmp"):]
        return value

    _, command = dbt_parse_run()
    env = {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8"}
    env.update({k: relocate(v) for k, v in image_env().items() if k != "PATH"})
    env.update(build_parse_env(command))
    result = subprocess.run(
        [str(dbt), "parse", "--project-dir", str(app), "--profiles-dir", str(app / "profiles")],
        env=env, cwd=scratch, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert (scratch / "dbt" / "target" / "manifest.json").is_file()
    # Every job selector resolves in the image's project (the CLI runs dbt with --selector):
    # `dbt ls --selector NAME` for each, in one process of that Python (dbt's own entry point,
    # invoked once per selector, the image's env and working directory) instead of one process
    # each, which only repeated dbt's start-up.
    selectors = yaml.safe_load((app / "selectors.yml").read_text(encoding="utf-8"))
    names = [selector["name"] for selector in selectors["selectors"]]
    listed = subprocess.run(
        [sys.executable, "-c", LIST_SELECTORS, str(app), *names],
        env=env, cwd=scratch, capture_output=True, text=True, check=False,
    )
    assert listed.returncode == 0, listed.stdout[-2000:] + listed.stderr[-2000:]
    counts = yaml.safe_load(listed.stdout.strip().splitlines()[-1])  # the JSON line
    assert list(counts) == names, counts
    for name, (ok, selected) in counts.items():
        assert ok, f"dbt ls --selector {name} failed:\n{listed.stdout[-2000:]}"
        assert selected, f"selector {name} selects nothing"
    # Nothing written into the (read-only in production) project directory.
    assert sorted(p.relative_to(app) for p in app.rglob("*")) == before
    # With the image's environment, the package runs dbt on that project.
    located = subprocess.run(
        [sys.executable, "-c",
         "from seedtest_analytics.paths import project_root; print(project_root())"],
        env=env, cwd=scratch, capture_output=True, text=True, check=False,
    )
    assert located.stdout.strip() == str(app), located.stderr


def test_operator_guide_matches_the_manifests() -> None:
    """docs/operations.md (deploy/README.md points there) names what the manifests hold."""
    guide = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    assert "docs/operations.md" in (REPO / "deploy" / "README.md").read_text(encoding="utf-8")
    minor = ".".join(MIN_K8S_VERSION.split(".")[:2])
    assert f"Kubernetes {minor} or newer" in guide
    namespace = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())["namespace"]
    assert f"kubectl create namespace {namespace}" in guide
    assert f"create job --from=cronjob/{CRONJOB_NAME}" in guide
    assert f"create secret generic {SECRET_NAME}" in guide
    assert f"--from-literal={SECRET_KEY}=" in guide
    assert "[INFO] Summary: processed=" in guide
    assert "FailJob" in guide
    for path in sorted(K8S_DIR.glob("*.yaml")):
        assert f"`{path.name}`" in guide, f"{path.name} is not described in docs/operations.md"
    configuration = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    for name in load_one("configmap.yaml")["data"]:
        assert f"`{name}`" in configuration, f"{name} is not in docs/configuration.md"
