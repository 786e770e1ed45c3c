{#
    The window of a run, from the vars only (never from the state of a downstream model):

      run_window_start()    first day an incremental run recomputes: anchor_date - lookback_days
      lead_in_days()        days read before it (the improvement index looks 27 days back)
      attempts_read_from()  first day the per-run attempt table reads, or none for all history
      incremental_window_start(identifier)  the same for an incremental model, from its own table
#}

{% macro lead_in_days() -%}
    {{- return(27) -}}
{%- endmacro %}

{% macro run_window_start() -%}
    {{- return(anchor_date() - modules.datetime.timedelta(days=lookback_days())) -}}
{%- endmacro %}

{#
    First day (a Python date) the per-run attempt table reads: the run's window with its
    lead-in, or none (all history up to the anchor) when the run is a full build: with
    --full-refresh, or when the table does not exist yet (the project's first run). Evaluated
    while the model compiles and again in its pre-hook, before the table changes, so both see
    the same state.
#}
{% macro attempts_read_from() -%}
    {%- if not execute or flags.FULL_REFRESH -%}
        {{- return(none) -}}
    {%- endif -%}
    {#- `this` is none in a unit test, whose input is all there is -#}
    {%- if this is none or load_relation(this) is none -%}
        {{- return(none) -}}
    {%- endif -%}
    {{- return(run_window_start() - modules.datetime.timedelta(days=lead_in_days())) -}}
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
