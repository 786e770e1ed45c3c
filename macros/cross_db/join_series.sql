{#
    Joins each row of the preceding `from` item to the whole numbers lo..hi (none when
    lo > hi), as column `alias`: PostgreSQL's `cross join lateral generate_series(lo, hi)`.
    Goes right after the `from` item, before `where`.
#}
{% macro join_series(lo_sql, hi_sql, alias) -%}
    {{- adapter.dispatch('join_series', 'seedtest_analytics')(lo_sql, hi_sql, alias) -}}
{%- endmacro %}

{% macro default__join_series(lo_sql, hi_sql, alias) -%}
    cross join
        lateral generate_series(
            {{ lo_sql }},
            {{ hi_sql }}
        ) as {{ alias }}
{%- endmacro %}

{# Spark's sequence(lo, hi) counts down when lo > hi: those rows get an empty array. #}
{% macro spark__join_series(lo_sql, hi_sql, alias) -%}
    lateral view explode(
        if({{ lo_sql }} <= {{ hi_sql }}, sequence({{ lo_sql }}, {{ hi_sql }}), array())
    ) {{ alias }}_series as {{ alias }}
{%- endmacro %}
