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


# --- the structure rules (dbt's "How we structure our dbt projects") ------------------------
#
# Every departure from a rule below is listed here, once, with its reason; a listed exception
# that no longer departs from its rule fails test_structure_exceptions_are_all_needed.
STRUCTURE_EXCEPTIONS: dict[tuple[str, str], str] = {
    ("naming", "int_user_ids"): (
        "incremental table whose relation name the dry run, the ownership check (guards.py: "
        "relation = file name, no aliases) and the run_windows registry read"
    ),
    ("naming", "int_activity_daily"): (
        "incremental table read by name by the Python steps (pipeline.ACTIVITY, the "
        "backtest) and kept across runs: its relation name stays; a core fact in intermediate "
        "because it reads the attempt staging model, which a mart may not"
    ),
    ("rejoin", "int_topic_daily__improvement_scored"): (
        "the improvement index needs the 27-day lead-in of int_topic_daily__aggregated, "
        "which features_topic_daily does not write; joined back on (user, topic, day)"
    ),
    ("rejoin", "int_topic_daily__theta_joined"): (
        "theta of the days features_topic_daily writes only (an as-of join per day); joined "
        "back on (user, topic, day)"
    ),
    ("public", "churn_user_anchors"): (
        "an input of the churn extra (backtest, train-churn), not of the nightly contract; "
        "its user_id keeps the \"C\" collation of its SQL, which a contract's column would drop"
    ),
}
# Per layer: the name pattern, and the layers a model of it may read.
NAMING = {
    # stg_<source>__<entities>, the entity plural
    "staging": re.compile(r"stg_[a-z0-9]+__[a-z0-9_]*s"),
    # int_<entity>__<verb>, the verb a past participle (mapped, windowed, aggregated, ...)
    "intermediate": re.compile(r"int_[a-z0-9_]+__[a-z0-9_]*ed"),
    # marts: plain entity names, no layer prefix
    "marts": re.compile(r"(?!stg_|int_|fct_|dim_)[a-z][a-z0-9_]*"),
}
READS = {"staging": set(), "intermediate": {"staging", "intermediate"},
         "marts": {"intermediate", "marts"}}


def structure_problems(manifest: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(rule, model, what is wrong) for every departure from the structure rules."""
    models = project_nodes(manifest, "model")
    problems: list[tuple[str, str, str]] = []
    children: dict[str, set[str]] = {uid: set() for uid in models}
    for uid, node in models.items():
        for parent in node["depends_on"]["nodes"]:
            if parent in children:
                children[parent].add(uid)
    for uid, node in sorted(models.items()):
        name, where = node["name"], layer(node)
        if where in NAMING and not NAMING[where].fullmatch(name):
            problems.append(("naming", name, f"{where} name is not {NAMING[where].pattern}"))
        folder = Path(node["original_file_path"]).parent
        if where == "marts" and len(node["fqn"]) < 4:
            problems.append(("folder", name, "a mart lives in a domain folder (marts/<domain>/)"))
        patch = (node.get("patch_path") or "").split("://")[-1]
        if Path(patch).parent != folder or not re.fullmatch(r"_\w+__models\.yml", Path(patch).name):
            problems.append(("docs", name, f"documented in {patch or 'nothing'}, not in {folder}"))
        undocumented = [c for c, col in node["columns"].items() if not col["description"].strip()]
        if not node["description"].strip() or not node["columns"] or undocumented:
            problems.append(("docs", name, f"model or columns undocumented {undocumented}"))
        for parent in node["depends_on"]["nodes"]:
            if parent in models and layer(models[parent]) not in READS.get(where, set()):
                read = models[parent]
                problems.append(("layering", name, f"reads {layer(read)} model {read['name']}"))
            if parent.startswith("source.") and where != "staging":
                problems.append(("layering", name, "calls source() outside staging"))
        if where == "marts" and node["access"] != "public":
            problems.append(("public", name, "a mart is public (access: public, with a contract)"))
        if node["access"] == "public" and not node["contract"]["enforced"]:
            problems.append(("contract", name, "a public model has an enforced contract"))
        # rejoin of an upstream concept: A -> B -> this and A -> this, where B feeds only this
        parents = {p for p in node["depends_on"]["nodes"] if p in models}
        for middle in sorted(parents):
            if children[middle] == {uid}:
                rejoined = parents & set(models[middle]["depends_on"]["nodes"])
                if rejoined:
                    problems.append(("rejoin", models[middle]["name"], (
                        f"feeds only {name}, which reads its parents "
                        f"{sorted(models[p]['name'] for p in rejoined)} again")))
    return problems


def test_models_follow_the_structure_rules(manifest: dict[str, Any]) -> None:
    """Naming per layer, one documenting yml per folder, layering (staging reads only sources,
    marts no staging), no rejoined upstream concepts, public marts contracted; exceptions only
    as listed in STRUCTURE_EXCEPTIONS."""
    problems = [
        f"{rule} {name}: {what}" for rule, name, what in structure_problems(manifest)
        if (rule, name) not in STRUCTURE_EXCEPTIONS
    ]
    assert not problems, "\n".join(problems)


def test_structure_exceptions_are_all_needed(manifest: dict[str, Any]) -> None:
    found = {(rule, name) for rule, name, _ in structure_problems(manifest)}
    stale = sorted(set(STRUCTURE_EXCEPTIONS) - found)
    assert not stale, f"listed exceptions that no longer apply: {stale}"
    for key, reason in STRUCTURE_EXCEPTIONS.items():
        assert len(reason) > 40, key


def test_the_structure_rules_catch_a_departure(manifest: dict[str, Any]) -> None:
    """The checks can fail: a staging model reading a mart, a singular staging name, a public
    mart without a contract and a mart outside a domain folder are each reported."""
    broken = json.loads(json.dumps(manifest))
    models = project_nodes(broken, "model")
    staging = broken["nodes"][f"model.{PROJECT}.stg_seedtest__sessions"]
    staging["name"] = "stg_seedtest__session"
    staging["depends_on"]["nodes"].append(f"model.{PROJECT}.inactive_users")
    mart = broken["nodes"][f"model.{PROJECT}.inactive_users"]
    mart["contract"]["enforced"] = False
    mart["fqn"] = [PROJECT, "marts", "inactive_users"]
    found = {(rule, name) for rule, name, _ in structure_problems(broken)}
    assert {("naming", "stg_seedtest__session"), ("layering", "stg_seedtest__session"),
            ("contract", "inactive_users"), ("folder", "inactive_users")} <= found
    assert len(models) >= 20


def test_macros_keep_a_dispatcher_and_its_variants_together(manifest: dict[str, Any]) -> None:
    """macros/<concept folder>/<concept>.sql: every engine variant (default__/postgres__/
    spark__<name>) sits in the file of its dispatcher <name>, and every documented macro is
    documented in its own folder's _<folder>__macros.yml."""
    macros = {
        macro["name"]: macro for macro in manifest["macros"].values()
        if macro["package_name"] == PROJECT
    }
    assert len(macros) >= 60
    problems = []
    for name, macro in sorted(macros.items()):
        match = re.fullmatch(r"(?:default|postgres|spark)__(\w+)", name)
        if match and match.group(1) in macros:
            home = macros[match.group(1)]["original_file_path"]
            if macro["original_file_path"] != home:
                problems.append(f"{name}: {macro['original_file_path']}, dispatcher: {home}")
        patch = (macro.get("patch_path") or "").split("://")[-1]
        folder = Path(macro["original_file_path"]).parent
        own = folder / f"_{folder.name}__macros.yml"
        if patch and not patch.startswith("tests/") and Path(patch) != own:
            problems.append(f"{name} ({folder}) is documented in {patch}")
    assert not problems, "\n".join(problems)


def test_names_fit_postgresql_identifiers(manifest: dict[str, Any]) -> None:
    """A model's or unit test's name becomes a relation name (a unit test builds one named
    after itself): PostgreSQL refuses identifiers longer than 63 bytes."""
    names = [
        node["name"] for node in [*manifest["nodes"].values(), *manifest["unit_tests"].values()]
        if node["package_name"] == PROJECT and node["resource_type"] in ("model", "unit_test")
    ]
    assert len(names) >= 30
    too_long = [name for name in names if len(name.encode()) > 63]
    assert not too_long, too_long
