"""The dbt project's DAG flows one way (staging -> intermediate -> marts), only staging reads
the application's tables, and no model reads a relation of the project's schema that is not
one of its refs.

Real dbt compiles the models against a fresh database (the introspection some models do needs
one); the checks read `target/manifest.json`: `depends_on` of every node, and the compiled SQL
of every model.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO, create_database, drop_database
from seedtest_analytics.db.connection import ConnectionParams
from seedtest_analytics.dbt.runner import dbt_env, target_schema

PROJECT = "seedtest_analytics"
LAYERS = {"staging": 0, "intermediate": 1, "marts": 2}
# A relation in compiled SQL as dbt writes it: "schema"."name", optionally after "database".
QUOTED_RELATION = re.compile(r'(?:"[^"]+"\s*\.\s*)?"([^"]+)"\s*\.\s*"([^"]+)"')


@pytest.fixture(scope="module")
def manifest(
    server_params: ConnectionParams, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("dag")
    params = create_database(server_params)
    try:
        env = {
            **os.environ, **dbt_env(params),
            "DBT_TARGET_PATH": str(base / "target"), "DBT_LOG_PATH": str(base / "logs"),
        }
        dbt = Path(sys.executable).with_name("dbt")
        result = subprocess.run(
            [str(dbt), "compile", "--select", "resource_type:model",
             "--project-dir", str(REPO), "--profiles-dir", str(REPO / "profiles"),
             "--vars", json.dumps({"anchor_date": "2025-11-01"})],
            cwd=REPO, env=env, capture_output=True, text=True, check=False,
        )
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
        yield json.loads((base / "target" / "manifest.json").read_text())
    finally:
        drop_database(server_params, params)


def project_nodes(manifest: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        uid: node for uid, node in manifest["nodes"].items()
        if node["resource_type"] == resource_type and node["package_name"] == PROJECT
    }


def layer(node: dict[str, Any]) -> str:
    """The layer of a model: the first folder under models/ (fqn[1])."""
    return node["fqn"][1] if len(node["fqn"]) > 2 else ""


def refs_through_ephemerals(manifest: dict[str, Any], uid: str) -> set[str]:
    """The nodes whose relations a node's compiled SQL may name: its parents, and the parents
    of any ephemeral parent (whose SQL dbt inlines as a CTE), recursively."""
    nodes = manifest["nodes"]
    found: set[str] = set()
    todo = list(nodes[uid]["depends_on"]["nodes"])
    while todo:
        parent = todo.pop()
        if parent in found or parent not in nodes:
            continue
        found.add(parent)
        if nodes[parent].get("config", {}).get("materialized") == "ephemeral":
            todo.extend(nodes[parent]["depends_on"]["nodes"])
    return found


def test_every_model_is_in_a_layer_and_depends_only_on_earlier_layers(
    manifest: dict[str, Any],
) -> None:
    models = project_nodes(manifest, "model")
    assert len(models) >= 10
    outside = sorted(node["name"] for node in models.values() if layer(node) not in LAYERS)
    assert not outside, f"models outside staging/intermediate/marts: {outside}"
    backwards = sorted(
        f"{node['name']} ({layer(node)}) reads {models[parent]['name']} ({layer(models[parent])})"
        for node in models.values()
        for parent in node["depends_on"]["nodes"]
        if parent in models and LAYERS[layer(models[parent])] > LAYERS[layer(node)]
    )
    assert not backwards, "reads a later layer:\n" + "\n".join(backwards)


def test_only_staging_reads_sources(manifest: dict[str, Any]) -> None:
    readers = sorted(
        f"{node['resource_type']} {node['name']}"
        for node in manifest["nodes"].values()
        if node["package_name"] == PROJECT
        and any(parent.startswith("source.") for parent in node["depends_on"]["nodes"])
        # a data test declared on a source column checks the source; it feeds nothing
        and not (node.get("attached_node") or "").startswith("source.")
        and not (node["resource_type"] == "model" and layer(node) == "staging")
    )
    assert not readers, "call source() outside staging: " + ", ".join(readers)
    staging = [node for node in project_nodes(manifest, "model").values()
               if layer(node) == "staging"]
    assert staging
    for node in staging:
        assert any(p.startswith("source.") for p in node["depends_on"]["nodes"]), node["name"]


def test_compiled_sql_reads_only_its_refs(manifest: dict[str, Any]) -> None:
    schema = target_schema()
    unqualified = re.compile(rf"(?<![\w.\"]){re.escape(schema)}\.(\w+)", re.IGNORECASE)
    models = project_nodes(manifest, "model")
    relation_names = {
        uid: node["alias"] or node["name"] for uid, node in manifest["nodes"].items()
    }
    compiled = 0
    outside: list[str] = []
    for uid, node in sorted(models.items()):
        code = node.get("compiled_code")
        if code is None:
            continue
        compiled += 1
        allowed = {relation_names[uid]} | {
            relation_names[parent] for parent in refs_through_ephemerals(manifest, uid)
        }
        found = {name for first, name in QUOTED_RELATION.findall(code) if first == schema}
        found |= {name for name in unqualified.findall(code)}
        outside += [f"{node['name']} reads {schema}.{name}" for name in sorted(found - allowed)]
    assert compiled == len(models), "some models were not compiled"
    assert not outside, "relations outside the refs:\n" + "\n".join(outside)


def test_test_severities_follow_the_rule(manifest: dict[str, Any]) -> None:
    """docs/how-it-works.md, "Which dbt test may stop a run": a warning is a source assumption
    or a comparison with the live source, and says which (meta check), so the log can count and
    name it; an error test on an incremental model is scoped to the run's window (`where`),
    never the history earlier runs wrote; every test on a staging model (the application's
    data) warns."""
    models = project_nodes(manifest, "model")
    tests = project_nodes(manifest, "test")
    assert len(tests) >= 10
    problems: list[str] = []
    for node in tests.values():
        config = node["config"]
        check = (config.get("meta") or {}).get("check")
        attached = models.get(node.get("attached_node") or "")
        if (config["severity"].lower() == "warn") != (check in ("source", "reconcile")):
            problems.append(f"{node['name']}: severity {config['severity']}, meta check {check}")
        if check == "source" and not (
            attached is not None and layer(attached) == "staging" and node.get("column_name")
            and (config.get("meta") or {}).get("assumption")
        ):
            problems.append(f"{node['name']}: a source check names a staging column and assumption")
        if attached is not None and layer(attached) == "staging" and check != "source":
            problems.append(f"{node['name']}: a test of the application's data must warn")
        if (
            attached is not None and config["severity"].lower() == "error"
            and attached["config"]["materialized"] == "incremental"
            and "__window_start__" not in (config.get("where") or "")
        ):
            problems.append(f"{node['name']}: an error test of {attached['name']} needs the window")
    assert not problems, "\n".join(problems)
