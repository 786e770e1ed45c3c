{#
    Every dbt var this project reads goes through one of these macros, which either return a
    value of the right shape or stop the run at compile time. Nothing unchecked reaches SQL,
    whichever way dbt is invoked (the CLI validates the same values first).
#}

{#
    How dbt reads a var, and why this file never lets it render one (dbt-core 1.11,
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

{% macro activity_timezone() -%}
    {%- set raw = _var_text('activity_timezone', 'UTC') -%}
    {%- if not modules.re.fullmatch('[A-Za-z0-9_+/-]{1,64}', raw)
        or raw not in modules.pytz.all_timezones_set -%}
        {{- _invalid_var('activity_timezone', 'an IANA time zone such as Asia/Seoul', raw) -}}
    {%- endif -%}
    {{- return(raw) -}}
{%- endmacro %}

{% macro _local_today() -%}
    {%- set zone = modules.pytz.timezone(activity_timezone()) -%}
    {{- return(modules.datetime.datetime.now(zone).date()) -}}
{%- endmacro %}

{#
    The one date rule, the same as the CLI's (seedtest_analytics.config.parse_date; a test runs
    both over the same texts): YYYY-MM-DD in ASCII digits, a real calendar date, on or after
    1900-01-01. Returns what a valid value looks like when the text is not one, else ''.
#}
{% macro date_problem(text) -%}
    {%- set match = modules.re.fullmatch('([0-9]{4})-([0-9]{2})-([0-9]{2})', text) -%}
    {%- if not match -%}
        {{- return('a date as YYYY-MM-DD') -}}
    {%- endif -%}
    {%- set year = match.group(1) | int -%}
    {%- set month = match.group(2) | int -%}
    {%- set day = match.group(3) | int -%}
    {%- if year < 1 or month < 1 or month > 12 or day < 1 -%}
        {{- return('a valid calendar date') -}}
    {%- endif -%}
    {%- if month == 12 -%}
        {%- set last_day = 31 -%}
    {%- else -%}
        {%- set last_day = (modules.datetime.date(year, month + 1, 1)
            - modules.datetime.timedelta(days=1)).day -%}
    {%- endif -%}
    {%- if day > last_day -%}
        {{- return('a valid calendar date') -}}
    {%- endif -%}
    {%- if year < 1900 -%}
        {{- return('on or after 1900-01-01') -}}
    {%- endif -%}
    {{- return('') -}}
{%- endmacro %}

{% macro validated_date(name, raw) -%}
    {%- set problem = date_problem(raw) -%}
    {%- if problem -%}
        {{- _invalid_var(name, problem, raw) -}}
    {%- endif -%}
    {{- return(modules.datetime.date.fromisoformat(raw)) -}}
{%- endmacro %}

{# The anchor as a date object: the var, else yesterday in activity_timezone. #}
{% macro anchor_date() -%}
    {%- set raw = _var_text('anchor_date', '') -%}
    {%- if raw == '' -%}
        {{- return(_local_today() - modules.datetime.timedelta(days=1)) -}}
    {%- endif -%}
    {%- set anchor = validated_date('anchor_date', raw) -%}
    {%- if anchor > _local_today() -%}
        {{- _invalid_var('anchor_date', 'today or earlier in ' ~ activity_timezone(), raw) -}}
    {%- endif -%}
    {{- return(anchor) -}}
{%- endmacro %}

{% macro validated_int(name, default, minimum=0, maximum=36500) -%}
    {%- set raw = _var_text(name, default) -%}
    {%- if not modules.re.fullmatch('[0-9]{1,6}', raw) -%}
        {{- _invalid_var(name, 'a whole number', raw) -}}
    {%- endif -%}
    {%- set value = raw | int -%}
    {%- if value < minimum or value > maximum -%}
        {{- _invalid_var(name, 'between ' ~ minimum ~ ' and ' ~ maximum, raw) -}}
    {%- endif -%}
    {{- return(value) -}}
{%- endmacro %}

{% macro validated_bool(name, default) -%}
    {%- set raw = _var_text(name, default) | lower -%}
    {%- if raw in ('true', '1', 'yes', 'on', 'y', 't') -%}
        {{- return(true) -}}
    {%- elif raw in ('false', '0', 'no', 'off', 'n', 'f', '') -%}
        {{- return(false) -}}
    {%- endif -%}
    {{- _invalid_var(name, 'true or false', raw) -}}
{%- endmacro %}

{% macro validated_number(name, default) -%}
    {%- set raw = _var_text(name, default) -%}
    {#- Python's float text included: up to 17 significant digits, 1e-05, 1e+20. -#}
    {%- if not modules.re.fullmatch(
        '[+-]?([0-9]{1,20}([.][0-9]{0,20})?|[.][0-9]{1,20})([eE][+-]?[0-9]{1,3})?', raw
    ) -%}
        {{- _invalid_var(name, 'a decimal number', raw) -}}
    {%- endif -%}
    {{- return(raw) -}}
{%- endmacro %}

{% macro source_schema() -%}
    {%- set raw = _var_text('source_schema', 'public') -%}
    {%- if not modules.re.fullmatch('[a-z_][a-z0-9_]{0,62}', raw) -%}
        {{- _invalid_var('source_schema', 'a lowercase identifier', raw) -}}
    {%- endif -%}
    {{- return(raw) -}}
{%- endmacro %}

{% macro lookback_days() -%}
    {{- return(validated_int('lookback_days', '7', 0, 3650)) -}}
{%- endmacro %}

{% macro include_theta() -%}
    {{- return(validated_bool('include_theta', 'false')) -}}
{%- endmacro %}

{% macro map_user_ids() -%}
    {{- return(validated_bool('map_user_ids', 'true')) -}}
{%- endmacro %}

{#
    Var attempts_from_exam_results (env ATTEMPTS_FROM_EXAM_RESULTS, default false): derive the
    attempts from exam_results with the attempt view's rules (the user-id rule) instead of reading the
    application's `attempt` view, whose STRICT app_user_uuid() PostgreSQL cannot inline.
#}
{% macro attempts_from_exam_results() -%}
    {{- return(validated_bool('attempts_from_exam_results', 'false')) -}}
{%- endmacro %}

{% macro inactivity_threshold_days() -%}
    {{- return(validated_int('inactivity_threshold_days', '7')) -}}
{%- endmacro %}

{% macro kpi_lookback_days() -%}
    {{- return(validated_int('kpi_lookback_days', '30', 1)) -}}
{%- endmacro %}

{% macro default_target() -%}
    {{- return(validated_number('default_target', '0.0')) -}}
{%- endmacro %}

{#
    The dbt schema of the profile (SEEDTEST_DBT_SCHEMA): dbt puts it into SQL between double
    quotes without escaping them, so it has to be a plain identifier. Checked when the hook
    is parsed, i.e. before dbt creates the schema.
#}
{% macro validate_target_schema() -%}
    {%- if not modules.re.fullmatch('[a-z_][a-z0-9_]{0,62}', target.schema | string) -%}
        {{- exceptions.raise_compiler_error(
            "the target schema must be a lowercase identifier (got "
            ~ (target.schema | string | truncate(60)) ~ ")"
        ) -}}
    {%- endif -%}
{%- endmacro %}

{# Run by on-run-start: every var checked once, before any model runs. #}
{% macro validate_all_vars() -%}
    {%- do _refuse_unsafe_var_text() -%}
    {%- do validate_target_schema() -%}
    {%- do anchor_date() -%}
    {%- do lookback_days() -%}
    {%- do include_theta() -%}
    {%- do map_user_ids() -%}
    {%- do attempts_from_exam_results() -%}
    {%- do inactivity_threshold_days() -%}
    {%- do kpi_lookback_days() -%}
    {%- do default_target() -%}
    {%- do source_schema() -%}
    select 1
{%- endmacro %}
