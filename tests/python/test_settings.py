"""The defaults and bounds of the settings are defined once, in seedtest_analytics.config;
every other place that states them is checked against that definition:
the macros of macros/vars/ (the dbt project validates the vars again), profiles/profiles.yml,
the README's and deploy/README.md's tables, and the ConfigMap."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import yaml

from conftest import REPO
from seedtest_analytics.config import VARS, IntVar, Settings, Var, load_settings
from seedtest_analytics.errors import UsageError

BY_ENV = {var.env: var for var in VARS}
BY_DBT_VAR = {var.dbt_var: var for var in VARS if var.dbt_var}


def _macros() -> str:
    """The var macros (the anchor spine's vars, read the same way, have no environment)."""
    return "".join(
        (REPO / "macros" / "vars" / name).read_text(encoding="utf-8")
        for name in ("var_text.sql", "validators.sql", "project_vars.sql")
    )


def _table(path: str) -> dict[str, str]:
    """`| \\`NAME\\` | default | meaning |` rows of a markdown file: NAME -> default cell."""
    rows = {}
    for line in (REPO / path).read_text(encoding="utf-8").splitlines():
        match = re.match(r"\|\s*`([A-Z][A-Z0-9_]+)`\s*\|([^|]*)\|", line)
        if match:
            rows[match.group(1)] = match.group(2).strip()
    return rows


def test_defaults_parse_to_the_settings_defaults() -> None:
    """With nothing set, the environment gives the dataclass's own defaults."""
    loaded = load_settings({}, date="2025-06-18")
    assert loaded == Settings(anchor_date=dt.date(2025, 6, 18))
    for var in VARS:
        if isinstance(var, IntVar):
            assert var.minimum <= int(var.default) <= var.maximum, var
            for bad in (var.minimum - 1, var.maximum + 1):
                with pytest.raises(UsageError, match=var.env):
                    load_settings({var.env: str(bad)}, date="2025-06-18")


def test_validate_vars_macro_has_the_same_names_defaults_and_bounds() -> None:
    text = _macros()
    # The var -> environment variable map of _var_text.
    env_names = dict(re.findall(r"'(\w+)': '([A-Z][A-Z0-9_]+)'", text))
    expected = {name: var.env for name, var in BY_DBT_VAR.items()}
    assert env_names == expected | {"anchor_date": "ANCHOR_DATE"}
    signature = re.search(
        r"macro validated_int\(name, default, minimum=(\d+), maximum=(\d+)\)", text
    )
    assert signature, "validated_int's signature changed: update this test"
    checked = set()
    calls = re.finditer(
        r"(validated_int|validated_bool|validated_number|_var_text)\('(\w+)', '([^']*)'"
        r"(?:, (\d+))?(?:, (\d+))?\)",
        text,
    )
    for kind, name, default, minimum, maximum in (m.groups() for m in calls):
        if name == "anchor_date" or name not in BY_DBT_VAR:
            continue
        var = BY_DBT_VAR[name]
        assert default == var.default, (name, default, var.default)
        if kind == "validated_int":
            assert isinstance(var, IntVar), name
            assert int(minimum or signature.group(1)) == var.minimum, name
            assert int(maximum or signature.group(2)) == var.maximum, name
        checked.add(name)
    assert checked == set(BY_DBT_VAR), set(BY_DBT_VAR) - checked


def test_profile_default_schema() -> None:
    profiles = (REPO / "profiles" / "profiles.yml").read_text(encoding="utf-8")
    (default,) = re.findall(r"env_var\('SEEDTEST_DBT_SCHEMA', '(\w+)'\)", profiles)
    assert default == BY_ENV["SEEDTEST_DBT_SCHEMA"].default


def test_readme_table_states_the_defaults() -> None:
    table = _table("README.md")
    for var in VARS:
        assert var.env in table, f"{var.env} is missing from the README's table"
        assert table[var.env] == f"`{var.default}`", (var.env, table[var.env])


def test_configmap_and_operator_guide_agree_with_the_defaults() -> None:
    """Each ConfigMap value is the default, or an override the operator guide names as one
    (`value` here (`default` if unset))."""
    configmap = yaml.safe_load((REPO / "deploy" / "k8s" / "configmap.yaml").read_text())["data"]
    guide = _table("deploy/README.md")
    for name, value in configmap.items():
        var: Var = BY_ENV[name]
        stated = guide[name]
        override = re.fullmatch(r"`([^`]*)` here \(`([^`]*)` if unset\)", stated)
        if override:
            assert override.group(2) == var.default, (name, stated)
            assert override.group(1) == value != var.default, (name, value, stated)
        else:
            assert stated == f"`{var.default}`" == f"`{value}`", (name, stated, value)


def test_dbt_project_comments_state_the_defaults() -> None:
    """dbt_project.yml lists the vars with their environment variables and defaults."""
    text = (REPO / "dbt_project.yml").read_text(encoding="utf-8")
    stated = re.findall(r"^#\s+(\w+) \(([A-Z_]+)\).*?default ([^\s;,]+)\s*$", text, re.M)
    assert len(stated) >= 6, stated
    for name, env, default in stated:
        if name == "anchor_date":
            continue
        var = BY_DBT_VAR[name]
        assert (env, default) == (var.env, var.default), name
