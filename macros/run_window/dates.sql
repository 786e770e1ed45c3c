{#
    The run's dates as SQL, from the validated var anchor_date().
#}

{% macro date_literal(value) -%}
    date '{{ value.isoformat() }}'
{%- endmacro %}

{# End of the anchor day: activity at or after this instant does not count. #}
{% macro anchor_end_ts() -%}
    {{ local_midnight(date_literal(anchor_date() + modules.datetime.timedelta(days=1))) }}
{%- endmacro %}

{# The ISO Monday of the anchor's week, as a date literal (weekly_kpi.week_start). #}
{% macro anchor_week_start() -%}
    {%- set anchor = anchor_date() -%}
    {{ date_literal(anchor - modules.datetime.timedelta(days=anchor.weekday())) }}
{%- endmacro %}
