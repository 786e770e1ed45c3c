{#
    Every dbt var this project reads goes through one of these macros, which either return a
    value of the right shape or stop the run at compile time. Nothing unchecked reaches SQL,
    whichever way dbt is invoked (the CLI validates the same values first).
#}

{# The var as text: --vars first, else its environment variable, else the default. #}
{% macro _var_text(name, default) -%}
    {%- set env_name = {
        'anchor_date': 'ANCHOR_DATE',
        'lookback_days': 'AGG_LOOKBACK_DAYS',
        'include_theta': 'AGG_INCLUDE_THETA',
        'activity_timezone': 'ACTIVITY_TIMEZONE',
        'inactivity_threshold_days': 'INACTIVITY_THRESHOLD_DAYS',
        'kpi_lookback_days': 'KPI_LOOKBACK_DAYS',
        'default_target': 'METRICS_DEFAULT_TARGET',
        'source_schema': 'SOURCE_SCHEMA',
        'map_user_ids': 'MAP_USER_IDS',
    }[name] -%}
    {%- set raw = var(name, env_var(env_name, default)) -%}
    {%- if raw is none -%}{%- set raw = default -%}{%- endif -%}
    {{- return(raw | string | trim) -}}
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

{% macro validated_date(name, raw) -%}
    {%- set match = modules.re.fullmatch('([0-9]{4})-([0-9]{2})-([0-9]{2})', raw) -%}
    {%- if not match -%}
        {{- _invalid_var(name, 'a date as YYYY-MM-DD', raw) -}}
    {%- endif -%}
    {%- set year = match.group(1) | int -%}
    {%- set month = match.group(2) | int -%}
    {%- set day = match.group(3) | int -%}
    {%- if year < 1900 or month < 1 or month > 12 or day < 1 -%}
        {{- _invalid_var(name, 'a valid calendar date', raw) -}}
    {%- endif -%}
    {%- set next_month = modules.datetime.date(year + (month // 12), (month % 12) + 1, 1) -%}
    {%- if day > (next_month - modules.datetime.timedelta(days=1)).day -%}
        {{- _invalid_var(name, 'a valid calendar date', raw) -}}
    {%- endif -%}
    {{- return(modules.datetime.date(year, month, day)) -}}
{%- endmacro %}

{# The anchor as a date object: the var, else yesterday in activity_timezone. #}
{% macro anchor_date() -%}
    {%- set raw = _var_text('anchor_date', '') -%}
    {%- if raw in ('', 'None', 'none') -%}
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
    {%- do validate_target_schema() -%}
    {%- do anchor_date() -%}
    {%- do lookback_days() -%}
    {%- do include_theta() -%}
    {%- do map_user_ids() -%}
    {%- do inactivity_threshold_days() -%}
    {%- do kpi_lookback_days() -%}
    {%- do default_target() -%}
    {%- do source_schema() -%}
    select 1
{%- endmacro %}
