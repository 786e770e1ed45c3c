"""The settings are defined once, in seedtest_analytics.config (SETTINGS): docs/configuration.md
is generated from them, and the places that cannot import them are checked against them:
the macros of macros/vars/ (the dbt project validates the vars again), profiles/profiles.yml,
and the ConfigMap."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import yaml

from conftest import REPO
from seedtest_analytics import config
from seedtest_analytics.config import GROUPS, SETTINGS, VARS, IntVar, Settings, Var, load_settings
from seedtest_analytics.errors import UsageError
from seedtest_dev import configdoc

BY_ENV = {var.env: var for var in SETTINGS}
BY_DBT_VAR = {var.dbt_var: var for var in VARS if var.dbt_var}


def _macros() -> str:
    """The var macros (the anchor spine's vars, read the same way, have no environment)."""
    return "".join(
        (REPO / "macros" / "vars" / name).read_text(encoding="utf-8")
        for name in ("var_text.sql", "validators.sql", "project_vars.sql")
    )


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


def test_profile_reads_documented_variables_with_their_defaults() -> None:
    """Every env_var('NAME', 'default') of profiles/profiles.yml is a setting with that
    default (the profile cannot import the table, so it is compared)."""
    profiles = (REPO / "profiles" / "profiles.yml").read_text(encoding="utf-8")
    used = re.findall(r"env_var\('([A-Z][A-Z0-9_]+)', '([^']*)'\)", profiles)
    assert len(used) >= 10, used
    for name, default in used:
        assert name in BY_ENV, f"profiles.yml reads {name}, which SETTINGS does not list"
        assert BY_ENV[name].default == default, (name, default, BY_ENV[name].default)


def test_every_setting_is_in_the_table_and_described() -> None:
    defined = [value for value in vars(config).values() if isinstance(value, Var)]
    assert set(defined) == set(SETTINGS), set(defined) ^ set(SETTINGS)
    assert len({var.env for var in SETTINGS}) == len(SETTINGS)
    for var in SETTINGS:
        assert var.doc.strip(), f"{var.env} has no description"
        assert var.group in GROUPS, (var.env, var.group)


def test_configuration_doc_is_generated_from_the_table() -> None:
    """docs/configuration.md is exactly what `seedtest-dev config-docs` writes."""
    checked_in = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert checked_in == configdoc.render(REPO), (
        "docs/configuration.md is out of date: run `seedtest-dev config-docs`"
    )
    for var in SETTINGS:
        assert f"| `{var.env}` |" in checked_in, var.env


def test_configmap_holds_valid_values_of_known_settings() -> None:
    """Each ConfigMap variable is a setting, and the values together load (exit 0, not 2)."""
    configmap = yaml.safe_load((REPO / "deploy" / "k8s" / "configmap.yaml").read_text())["data"]
    for name, value in configmap.items():
        var: Var = BY_ENV[name]
        assert isinstance(value, str) and value.strip(), (name, value)
        if isinstance(var, IntVar):
            var.parse(value)
    loaded = load_settings(configmap, date="2025-06-18")
    assert loaded.activity_timezone == configmap["ACTIVITY_TIMEZONE"]
