{#
    Every dbt var this project reads goes through the macros of this folder, which either
    return a value of the right shape or stop the run at compile time. Nothing unchecked
    reaches SQL, whichever way dbt is invoked (the CLI validates the same values first).
    This file reads a var's text safely; validators.sql checks its shape; project_vars.sql
    names each var with its default and bounds.
#}

{#
    How dbt reads a var, and why this folder never lets it render one (dbt-core 1.11,
    dbt/context/base.py Var.get_rendered_var): `var(name)` in a model, macro, test or hook
    renders a string given with --vars as a Jinja template, in the caller's context, so
    `--vars '{lookback_days: "{% do run_query(...) %}7"}'` runs the query and then returns "7".
    dbt skips rendering only when the text holds no Jinja delimiter (an opening brace
    followed by a brace, percent or hash sign, or one of these followed by a closing brace).
    env_var() values and var() defaults are returned as they are, and in schema YAML (the
    sources' `schema:`) var() returns the --vars value unrendered, but there the text still
    reaches SQL (dbt puts the schema into quoted identifiers and string literals unescaped).
    So every var is first read as dbt parsed it, from invocation_args_dict.vars (never
    rendered), and a text holding any character no valid value has is refused before var()
    is called; only then is the var read through var(), which returns it unchanged (and lets
    a unit test's `overrides: vars:` win, as in dbt).
#}

{# Each var and the environment variable it falls back to. #}
{% macro _var_env_names() -%}
    {{- return({
        'anchor_date': 'ANCHOR_DATE',
        'lookback_days': 'AGG_LOOKBACK_DAYS',
        'include_theta': 'AGG_INCLUDE_THETA',
        'activity_timezone': 'ACTIVITY_TIMEZONE',
        'inactivity_threshold_days': 'INACTIVITY_THRESHOLD_DAYS',
        'kpi_lookback_days': 'KPI_LOOKBACK_DAYS',
        'default_target': 'METRICS_DEFAULT_TARGET',
        'source_schema': 'SOURCE_SCHEMA',
        'map_user_ids': 'MAP_USER_IDS',
        'attempts_from_exam_results': 'ATTEMPTS_FROM_EXAM_RESULTS',
    }) -}}
{%- endmacro %}

{# Vars only ever given with --vars (no environment variable): the backtest's anchor spine. #}
{% macro _cli_only_vars() -%}
    {{- return(['churn_anchor_start', 'churn_anchor_end', 'churn_anchor_every']) -}}
{%- endmacro %}

{# The --vars of this invocation as dbt parsed them from YAML, never rendered. #}
{% macro _cli_vars() -%}
    {%- if invocation_args_dict is not defined or invocation_args_dict is not mapping -%}
        {#- Fail closed: without the parsed --vars, var() could render one. -#}
        {{- exceptions.raise_compiler_error(
            "the project vars cannot be read safely here (no invocation_args_dict)"
        ) -}}
    {%- endif -%}
    {%- set given = invocation_args_dict.get('vars') -%}
    {%- if given is string -%}
        {%- set given = fromyaml(given) -%}
    {%- endif -%}
    {{- return(given if given is mapping else {}) -}}
{%- endmacro %}

{#
    Every character a valid value of any var can hold: dates, whole and decimal numbers,
    booleans, time zone names, identifiers. No Jinja delimiter, quote, semicolon or space.
#}
{% macro _safe_var_text_pattern() -%}
    {{- return('[A-Za-z0-9_+./-]*') -}}
{%- endmacro %}

{#
    Stops the run when the text of any var (from --vars, else from its environment variable)
    holds a character no valid value has, the profile's schema is not a plain identifier or
    its database name holds a quote or a backslash, naming every such value at once. Runs
    before any var is read with var(): while dbt parses each model (--vars and the profile),
    and again, with the environment, first in the on-run-start hook and whenever a model,
    test or hook compiles, so such a text is never rendered nor put into SQL, whatever the
    dbt command. (A `dbt build` has created its target schema, empty, by then.)
#}
{% macro _refuse_unsafe_var_text() -%}
    {#- While dbt parses, --vars and the profile only: dbt tracks an environment variable read
        then and re-parses every file that read it whenever its value changes (see _var_text);
        the environment is checked, with the rest, when anything compiles, before it runs. -#}
    {%- set parsing = not execute -%}
    {%- set given = _cli_vars() -%}
    {%- set safe = _safe_var_text_pattern() -%}
    {%- set refused = [] -%}
    {%- for name, env_name in _var_env_names().items() -%}
        {%- if name in given and given[name] is not none -%}
            {%- if not modules.re.fullmatch(safe, given[name] | string | trim) -%}
                {%- do refused.append('var ' ~ name) -%}
            {%- endif -%}
        {%- elif not parsing and not modules.re.fullmatch(safe, env_var(env_name, '') | trim) -%}
            {%- do refused.append(env_name) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- for name in _cli_only_vars() if name in given and given[name] is not none -%}
        {%- if not modules.re.fullmatch(safe, given[name] | string | trim) -%}
            {%- do refused.append('var ' ~ name) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if not modules.re.fullmatch('[a-z_][a-z0-9_]{0,62}', target.schema | string) -%}
        {%- do refused.append('SEEDTEST_DBT_SCHEMA (the target schema)') -%}
    {%- endif -%}
    {#- dbt also puts the database name into string literals and quoted identifiers. -#}
    {%- for quote in ["'", '"', '\\'] if quote in target.database | string -%}
        {%- if loop.first -%}
            {%- do refused.append('SEEDTEST_PGDATABASE (the database name)') -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if refused -%}
        {{- exceptions.raise_compiler_error(
            refused | join(', ') ~ " must be plain text (letters, digits and _ + - . / only);"
            ~ " nothing was rendered or run"
        ) -}}
    {%- endif -%}
{%- endmacro %}

{#
    The var as trimmed text: --vars first (a unit test's overrides win), else its environment
    variable; empty (or a null var) means the default.
#}
{% macro _var_text(name, default) -%}
    {#- While dbt parses, the default: no model's refs or config depend on a var's value, and
        an environment variable read here would be tracked by dbt, which would re-parse every
        file that read it whenever it changes. The CLI passes its settings in the environment
        (not --vars, whose every change makes dbt re-parse the whole project), so a new
        anchor date each night keeps dbt's partial parse (and nothing is rendered while dbt
        parses: --vars are checked then, the environment when the models compile). -#}
    {%- do _refuse_unsafe_var_text() -%}
    {%- if not execute -%}
        {{- return(default) -}}
    {%- endif -%}
    {%- set raw = none -%}
    {%- if var.has_var(name) -%}
        {#- Safe: the text holds no Jinja delimiter, so dbt returns it unrendered. -#}
        {%- set raw = var(name) -%}
    {%- endif -%}
    {%- if raw is none and name in _var_env_names() -%}
        {%- set raw = env_var(_var_env_names()[name], '') -%}
    {%- endif -%}
    {%- if raw is none -%}
        {%- set raw = '' -%}
    {%- endif -%}
    {%- set text = raw | string | trim -%}
    {{- return(text if text != '' else default) -}}
{%- endmacro %}

{% macro _invalid_var(name, expected, raw) -%}
    {{- exceptions.raise_compiler_error(
        "var " ~ name ~ " must be " ~ expected ~ " (got " ~ (raw | string | truncate(60)) ~ ")"
    ) -}}
{%- endmacro %}
