{#
    Day arithmetic in activity_timezone, never in the database session's time zone:
    a calendar day d covers [local_midnight(d), local_midnight(d + 1)). The engine-specific
    SQL of local_midnight and local_date is in cross_db.sql.
#}

{# The timestamptz at which a local calendar day starts, for a date literal or expression. #}
{% macro local_midnight(date_sql) -%}
    {{- adapter.dispatch('local_midnight', 'seedtest_analytics')(date_sql, activity_timezone()) -}}
{%- endmacro %}

{# The local calendar day of a timestamptz expression. #}
{% macro local_date(timestamptz_sql) -%}
    {{- adapter.dispatch('local_date', 'seedtest_analytics')(timestamptz_sql, activity_timezone()) -}}
{%- endmacro %}

{% macro date_literal(value) -%}
    date '{{ value.isoformat() }}'
{%- endmacro %}

{# End of the anchor day: activity at or after this instant does not count. #}
{% macro anchor_end_ts() -%}
    {{ local_midnight(date_literal(anchor_date() + modules.datetime.timedelta(days=1))) }}
{%- endmacro %}

{#
    First day an incremental model recomputes in this run, from its own table (`identifier`
    is the model's own name: `this.identifier`, or the target of its incremental strategy):
    none for a full build (the table does not exist yet, or --full-refresh), when every day
    with data up to the anchor is built; else run_window_start() (anchor_date - lookback_days,
    from the vars). With `catch_up_column`, a table whose newest day is older than that also
    recomputes the days since (the runs in between were missed); the rows it adds are days
    that held none. A model only ever looks at itself here, never at another model.
#}
{% macro incremental_window_start(identifier, catch_up_column=none) -%}
    {%- if not execute -%}
        {{- return(none) -}}
    {%- endif -%}
    {%- set existing = adapter.get_relation(
        database=target.database, schema=target.schema, identifier=identifier
    ) -%}
    {%- if existing is none or flags.FULL_REFRESH -%}
        {{- return(none) -}}
    {%- endif -%}
    {%- set start = run_window_start() -%}
    {%- if catch_up_column is not none -%}
        {%- set newest = run_query(
            'select max(' ~ adapter.quote(catch_up_column) ~ ') from ' ~ existing
        ).columns[0].values()[0] -%}
        {%- if newest is none -%}
            {{- return(none) -}}
        {%- endif -%}
        {%- if newest is string -%}
            {#- a date comes back as text through a Spark Thrift Server (PyHive) -#}
            {%- set newest = validated_date('newest ' ~ catch_up_column ~ ' of ' ~ existing, newest) -%}
        {%- endif -%}
        {%- set next_day = newest + modules.datetime.timedelta(days=1) -%}
        {%- if next_day < start -%}
            {%- set start = next_day -%}
        {%- endif -%}
    {%- endif -%}
    {{- return(start) -}}
{%- endmacro %}

{#
    A where-clause condition keeping timestamps from `lead_in_days` before the window's first
    day `start` (none: no lower bound) up to the end of the anchor day; sargable on the column.
#}
{% macro in_window(timestamptz_sql, start, lead_in_days=0) -%}
    {%- if start is none -%}
        {{ timestamptz_sql }} < {{ anchor_end_ts() }}
    {%- else -%}
        {%- set first_day = start - modules.datetime.timedelta(days=lead_in_days) -%}
        {{ timestamptz_sql }} >= {{ local_midnight(date_literal(first_day)) }} and {{ timestamptz_sql }} < {{ anchor_end_ts() }}
    {%- endif -%}
{%- endmacro %}

{# `date_sql >= start`, or true when there is no lower bound (start is none). #}
{% macro on_or_after(date_sql, start) -%}
    {%- if start is none -%}
        true
    {%- else -%}
        {{ date_sql }} >= {{ date_literal(start) }}
    {%- endif -%}
{%- endmacro %}

{# The ISO Monday of the anchor's week, as a date literal (weekly_kpi.week_start). #}
{% macro anchor_week_start() -%}
    {%- set anchor = anchor_date() -%}
    {{ date_literal(anchor - modules.datetime.timedelta(days=anchor.weekday())) }}
{%- endmacro %}
