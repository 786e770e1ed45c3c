{#
    Infinite timestamps ('infinity', '-infinity') and NaN/Infinity numbers are invalid values:
    a row that holds one is skipped like a row without the value (and counted, and named by the
    source checks is_finite). PostgreSQL has both; on Spark a timestamp is always finite and
    `x - x = 0` is the same test for numbers (false for NaN and both infinities).
#}

{# SQL that is true when the timestamp expression is finite (null: null). #}
{% macro is_finite_time(sql_expr) -%}
    {{- adapter.dispatch('is_finite_time', 'seedtest_analytics')(sql_expr) -}}
{%- endmacro %}

{% macro default__is_finite_time(sql_expr) -%}
    isfinite({{ sql_expr }})
{%- endmacro %}

{% macro spark__is_finite_time(sql_expr) -%}
    ({{ sql_expr }} = {{ sql_expr }})
{%- endmacro %}

{# SQL that is true when the timestamp expression is infinite; answered from an index on it. #}
{% macro is_infinite_time(sql_expr) -%}
    {{- adapter.dispatch('is_infinite_time', 'seedtest_analytics')(sql_expr) -}}
{%- endmacro %}

{% macro default__is_infinite_time(sql_expr) -%}
    ({{ sql_expr }} = cast('infinity' as timestamptz) or {{ sql_expr }} = cast('-infinity' as timestamptz))
{%- endmacro %}

{% macro spark__is_infinite_time(sql_expr) -%}
    false
{%- endmacro %}

{# SQL that is true when the number expression is finite (null: null). #}
{% macro is_finite_number(sql_expr) -%}
    ({{ sql_expr }} - {{ sql_expr }} = 0)
{%- endmacro %}

{# The timestamp expression, or null when it is infinite. #}
{% macro finite_time_or_null(sql_expr) -%}
    case when {{ is_finite_time(sql_expr) }} then {{ sql_expr }} end
{%- endmacro %}
