{#
    Whole days from `start_date_sql` to `end_date_sql` (dates), PostgreSQL's date - date; null
    when either is null. Not dbt.datediff: dbt-spark's raises an error on a null date (a user
    who never came back has no next_active_day).
#}
{% macro days_between(start_date_sql, end_date_sql) -%}
    {{- adapter.dispatch('days_between', 'seedtest_analytics')(start_date_sql, end_date_sql) -}}
{%- endmacro %}

{% macro default__days_between(start_date_sql, end_date_sql) -%}
    {{ end_date_sql }} - {{ start_date_sql }}
{%- endmacro %}

{% macro spark__days_between(start_date_sql, end_date_sql) -%}
    datediff({{ end_date_sql }}, {{ start_date_sql }})
{%- endmacro %}

{#
    An integer day number of a date (days since 1970-01-01), for window frames over days:
    `order by day_number(d) range between 13 preceding and current row` is the same frame on
    every engine (interval offsets in RANGE frames are not portable).
#}
{% macro day_number(date_sql) -%}
    {{- adapter.dispatch('day_number', 'seedtest_analytics')(date_sql) -}}
{%- endmacro %}

{% macro default__day_number(date_sql) -%}
    ({{ date_sql }} - date '1970-01-01')
{%- endmacro %}

{% macro spark__day_number(date_sql) -%}
    unix_date({{ date_sql }})
{%- endmacro %}
