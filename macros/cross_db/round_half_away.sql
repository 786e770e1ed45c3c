{#
    A double rounded to a whole number half away from zero, as PostgreSQL rounds numeric
    (PostgreSQL's round(double precision) rounds half to even; Spark's round() on a double
    already rounds half up, away from zero).
#}
{% macro round_half_away(double_sql) -%}
    {{- adapter.dispatch('round_half_away', 'seedtest_analytics')(double_sql) -}}
{%- endmacro %}

{% macro default__round_half_away(double_sql) -%}
    round(cast({{ double_sql }} as numeric))
{%- endmacro %}

{% macro spark__round_half_away(double_sql) -%}
    round({{ double_sql }})
{%- endmacro %}
