{#
    numerator / denominator, for a whole-number numerator and a numeric denominator such as
    `(n - 1.0)`: PostgreSQL divides exactly (numeric), Spark in double precision (its decimal
    division keeps fewer digits than PostgreSQL's).
#}
{% macro ratio(numerator_sql, denominator_sql) -%}
    {{- adapter.dispatch('ratio', 'seedtest_analytics')(numerator_sql, denominator_sql) -}}
{%- endmacro %}

{% macro default__ratio(numerator_sql, denominator_sql) -%}
    ({{ numerator_sql }}) / {{ denominator_sql }}
{%- endmacro %}

{% macro spark__ratio(numerator_sql, denominator_sql) -%}
    cast({{ numerator_sql }} as double) / {{ denominator_sql }}
{%- endmacro %}

{# Whole-number division truncated toward zero (PostgreSQL's integer / integer). #}
{% macro int_div(numerator_sql, denominator_sql) -%}
    {{- adapter.dispatch('int_div', 'seedtest_analytics')(numerator_sql, denominator_sql) -}}
{%- endmacro %}

{% macro default__int_div(numerator_sql, denominator_sql) -%}
    ({{ numerator_sql }}) / {{ denominator_sql }}
{%- endmacro %}

{% macro spark__int_div(numerator_sql, denominator_sql) -%}
    cast(({{ numerator_sql }}) div {{ denominator_sql }} as int)
{%- endmacro %}
