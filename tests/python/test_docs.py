"""The dbt docs site: `seedtest-analytics docs` generates it, every model, source and column is
described, and the lineage runs from the sources through staging, features_topic_daily and the
activity models to the P/S step, an exposure.

The models are built first (`run` on an empty application schema), so the catalog holds every
model's real columns.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from conftest import create_database, drop_database, run_cli
from seedtest_analytics.db.connection import ConnectionParams

PROJECT = "seedtest_analytics"
EXPOSURE = f"exposure.{PROJECT}.ps_scoring_step"
ANCHOR = "2025-11-01"

# sources -> staging -> ... -> features_topic_daily (and int_activity_daily) -> user_last_activity
# -> inactive_users -> inactive_user_scoring_inputs -> the P/S step: direct edges after features.
CHAIN = (
    "features_topic_daily",
    "user_last_activity",
    "inactive_users",
    "inactive_user_scoring_inputs",
)


def model(name: str) -> str:
    return f"model.{PROJECT}.{name}"


@dataclass
class Site:
    target: Path
    stdout: str
    manifest: dict[str, Any]
    catalog: dict[str, Any]


@pytest.fixture(scope="module")
def site(
    server_params: ConnectionParams, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    base = tmp_path_factory.mktemp("docs")
    env = {
        "DBT_TARGET_PATH": str(base / "target"),
        "DBT_LOG_PATH": str(base / "logs"),
        "ANCHOR_DATE": ANCHOR,  # the same vars for both commands: dbt parses once
        "SEEDTEST_FRESHNESS_HOURS": "0",  # an empty application database: nothing is fresh
    }
    params = create_database(server_params)
    try:
        built = run_cli(params, "run", env=env)
        assert built.returncode == 0, built.stdout[-4000:] + built.stderr
        docs = run_cli(params, "docs", env=env)
        assert docs.returncode == 0, docs.stdout[-4000:] + docs.stderr
        assert "Traceback" not in docs.stdout + docs.stderr
        target = base / "target"
        yield Site(
            target=target,
            stdout=docs.stdout,
            manifest=json.loads((target / "manifest.json").read_text()),
            catalog=json.loads((target / "catalog.json").read_text()),
        )
    finally:
        drop_database(server_params, params)


def ancestors(manifest: dict[str, Any], unique_id: str) -> set[str]:
    parent_map = manifest["parent_map"]
    seen: set[str] = set()
    todo = list(parent_map.get(unique_id, []))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(parent_map.get(node, []))
    return seen


def test_docs_generates_the_site(site: Site) -> None:
    for name in ("index.html", "static_index.html", "manifest.json", "catalog.json"):
        path = site.target / name
        assert path.is_file() and path.stat().st_size > 0, path
    # The single page embeds the manifest, exposure included.
    assert "ps_scoring_step" in (site.target / "static_index.html").read_text()
    # The log line names where the site is (DBT_TARGET_PATH respected).
    assert f"[INFO] Docs site generated: {site.target / 'index.html'}" in site.stdout


def test_every_model_and_column_is_described(site: Site) -> None:
    models = {
        uid: node for uid, node in site.manifest["nodes"].items()
        if node["resource_type"] == "model" and node["package_name"] == PROJECT
    }
    assert len(models) >= 19
    missing: list[str] = []
    for uid, node in sorted(models.items()):
        if not node["description"].strip():
            missing.append(f"{node['name']} (model)")
        if node["config"]["materialized"] == "ephemeral":
            continue  # compiled into the models that read it: no relation, no catalog entry
        built = site.catalog["nodes"].get(uid)
        assert built is not None, f"{uid} is not in the catalog (was it built?)"
        described = {
            name.lower(): column for name, column in node["columns"].items()
        }
        for column in built["columns"]:
            if not described.get(column.lower(), {}).get("description", "").strip():
                missing.append(f"{node['name']}.{column}")
        stale = set(described) - {column.lower() for column in built["columns"]}
        assert not stale, f"{node['name']} documents columns it does not have: {sorted(stale)}"
    assert not missing, "undescribed: " + ", ".join(missing)


def test_every_source_and_source_column_is_described(site: Site) -> None:
    sources = site.manifest["sources"]
    assert {source["name"] for source in sources.values()} >= {
        "exam_results", "attempt", "session", "student_topic_theta", "mirt_ability",
        "ability_estimates", "interest_goal", "weekly_kpi",
    }
    missing: list[str] = []
    for uid, source in sorted(sources.items()):
        if not source["description"].strip():
            missing.append(f"{source['name']} (source table)")
        if not source["source_description"].strip():
            missing.append(f"{source['source_name']} (source)")
        columns = set(source["columns"])
        built = site.catalog["sources"].get(uid)
        if built is not None:  # every table exists in the application schema of the tests
            columns |= set(built["columns"])
        for column in sorted(columns):
            if not source["columns"].get(column, {}).get("description", "").strip():
                missing.append(f"{source['name']}.{column}")
    assert not missing, "undescribed: " + ", ".join(missing)


def test_ps_step_is_an_exposure(site: Site) -> None:
    exposure = site.manifest["exposures"].get(EXPOSURE)
    assert exposure is not None, sorted(site.manifest["exposures"])
    assert exposure["description"].strip()
    assert exposure["maturity"] == "high"
    assert exposure["type"] in ("application", "ml")
    assert exposure["owner"]["email"] and exposure["owner"]["name"]
    assert set(exposure["depends_on"]["nodes"]) == {
        model("inactive_user_scoring_inputs"), model("user_ability_as_of"),
    }
    for uid, other in site.manifest["exposures"].items():
        assert other["description"].strip(), f"{uid} has no description"


def test_lineage_from_sources_to_the_ps_step(site: Site) -> None:
    manifest = site.manifest
    parent_map, child_map = manifest["parent_map"], manifest["child_map"]

    # Sources feed staging models, and nothing else (tests on a source only check it).
    staging = {
        uid for uid, node in manifest["nodes"].items()
        if node["resource_type"] == "model" and node["name"].startswith("stg_seedtest__")
    }
    assert staging
    for source in manifest["sources"]:
        children = {
            child for child in child_map[source]
            if not child.startswith(("test.", "unit_test."))
        }
        assert children, f"{source} feeds nothing"
        assert children <= staging, f"{source} feeds {sorted(children - staging)}"
    for uid, parents in parent_map.items():
        if uid.startswith(("test.", "unit_test.")):
            continue
        if any(parent.startswith("source.") for parent in parents):
            assert uid in staging, f"{uid} reads a source directly"
    for uid in staging:
        assert any(p.startswith("source.") for p in parent_map[uid]), f"{uid} reads no source"

    # Staging -> features_topic_daily (through the intermediate models).
    feature_ancestors = ancestors(manifest, model("features_topic_daily"))
    assert model("stg_seedtest__attempts") in feature_ancestors
    assert f"source.{PROJECT}.seedtest.attempt" in feature_ancestors

    # features_topic_daily -> ... -> inactive_user_scoring_inputs -> the P/S step.
    for parent, child in pairwise(CHAIN):
        assert model(parent) in parent_map[model(child)], f"{parent} -> {child}"
        assert model(child) in child_map[model(parent)], f"{parent} -> {child}"
    assert model("int_activity_daily") in parent_map[model("user_last_activity")]
    assert model("features_topic_daily") not in ancestors(manifest, model("int_activity_daily"))
    assert model("inactive_user_scoring_inputs") in parent_map[EXPOSURE]
    assert EXPOSURE in child_map[model("inactive_user_scoring_inputs")]
    assert EXPOSURE in child_map[model("user_ability_as_of")]

    # Every source the P/S step stands on is upstream of it, optional ones included.
    upstream = ancestors(manifest, EXPOSURE)
    assert set(manifest["sources"]) <= upstream


def test_overview_page_and_rules_instead_of_citations(site: Site) -> None:
    """The site opens on the project's own overview, and no description cites a document
    the repository does not hold ("SPEC 3.2"): each says the rule itself."""
    overview = site.manifest["docs"].get(f"doc.{PROJECT}.__overview__")
    assert overview is not None, "no __overview__ doc block"
    for words in ("nightly", "P/S", "Where to start", "+exposure:ps_scoring_step"):
        assert words in overview["block_contents"], words
    texts: list[tuple[str, str]] = []
    for kind in ("nodes", "sources", "exposures", "macros"):
        for uid, item in site.manifest[kind].items():
            if item.get("package_name") != PROJECT:
                continue
            texts.append((uid, item.get("description") or ""))
            texts += [
                (f"{uid}.{name}", column.get("description") or "")
                for name, column in (item.get("columns") or {}).items()
            ]
    assert len(texts) > 100
    cited = [uid for uid, text in texts if re.search(r"\bSPEC\b", text)]
    assert not cited, f"descriptions citing SPEC: {cited}"
