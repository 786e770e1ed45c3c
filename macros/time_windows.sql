{#
    Day arithmetic in activity_timezone, never in the database session's time zone:
    a calendar day d covers [local_midnight(d), local_midnight(d + 1)).
#}

{# The timestamptz at which a local calendar day starts, for a date literal or expression. #}
{% macro local_midnight(date_sql) -%}
    (({{ date_sql }})::timestamp at time zone '{{ activity_timezone() }}')
{%- endmacro %}

{# The local calendar day of a timestamptz expression. #}
{% macro local_date(timestamptz_sql) -%}
    (({{ timestamptz_sql }}) at time zone '{{ activity_timezone() }}')::date
{%- endmacro %}

{% macro date_literal(value) -%}
    date '{{ value.isoformat() }}'
{%- endmacro %}

{# End of the anchor day: activity at or after this instant does not count. #}
{% macro anchor_end_ts() -%}
    {{ local_midnight(date_literal(anchor_date() + modules.datetime.timedelta(days=1))) }}
{%- endmacro %}

{#
    First day features_topic_daily (re)computes in this run, or none for a full build
    (first run, or --full-refresh): then every day with data up to the anchor is built.
    Upstream models call this too, so they only read what the run needs.
#}
{% macro features_window_start() -%}
    {%- if not execute -%}
        {{- return(none) -}}
    {%- endif -%}
    {%- set existing = adapter.get_relation(
        database=target.database, schema=target.schema, identifier='features_topic_daily'
    ) -%}
    {%- if existing is none or flags.FULL_REFRESH -%}
        {{- return(none) -}}
    {%- endif -%}
    {{- return(anchor_date() - modules.datetime.timedelta(days=lookback_days())) -}}
{%- endmacro %}

{#
    A where-clause condition keeping timestamps from `lead_in_days` before the window's first
    day up to the end of the anchor day (sargable on the timestamp column).
#}
{% macro in_features_window(timestamptz_sql, lead_in_days=0) -%}
    {%- set start = features_window_start() -%}
    {{ timestamptz_sql }} < {{ anchor_end_ts() }}
    {%- if start is not none %}
    and {{ timestamptz_sql }} >= {{ local_midnight(date_literal(start - modules.datetime.timedelta(days=lead_in_days))) }}
    {%- endif -%}
{%- endmacro %}
