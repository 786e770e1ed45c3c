{#
    The project's vars, each with its default and bounds (the same as the CLI's
    seedtest_analytics.config), and the on-run-start hook that checks them all.
#}

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
