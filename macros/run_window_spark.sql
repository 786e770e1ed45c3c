{#
    The run_windows registry (run_window.sql) on Spark, which has no transactions: a record
    cannot change together with its table. So the registry is a log (parquet, appended to):
    the pre-hook record_run_window appends the window of the build that starts (state
    `building`), the post-hook confirm_run_window, which runs only when the build succeeded,
    appends it again as `built`, and recorded_run_window reads a model's latest entry, which
    counts only when it is `built`. A build that failed (or is still running) thus has no
    recorded window, and a model that checks it (require_run_window) stops before it deletes
    anything. (dbt-spark drops a parquet table before it re-creates it, so a failed build
    leaves no table rather than a stale one.)
#}

{% macro spark___run_windows_exists() -%}
    {%- set registry = _run_windows_relation() -%}
    {%- set found = run_query(
        'show tables in ' ~ registry.schema ~ " like '" ~ registry.identifier ~ "'"
    ) -%}
    {{- return(found.rows | length > 0) -}}
{%- endmacro %}

{% macro spark__record_run_window(window) -%}
    {%- if not execute -%}
        {{- return('select 1') -}}
    {%- endif -%}
    {%- set registry = _run_windows_relation() -%}
    {%- do run_query(
        'create table if not exists ' ~ registry ~ ' (model string, run_window string,'
        ~ ' recorded_at timestamp, invocation_id string, state string) using parquet'
    ) -%}
    insert into {{ registry }}
    values (
        {{ _sql_text(this.identifier) }},
        {{ _sql_text(tojson(window)) }},
        current_timestamp(),
        {{ _sql_text(invocation_id) }},
        'building'
    )
{%- endmacro %}

{% macro spark__confirm_run_window() -%}
    {%- if execute -%}
    insert into {{ _run_windows_relation() }}
    select model, run_window, current_timestamp(), invocation_id, 'built'
    from {{ _run_windows_relation() }}
    where
        model = {{ _sql_text(this.identifier) }}
        and invocation_id = {{ _sql_text(invocation_id) }}
        and state = 'building'
    {%- endif -%}
{%- endmacro %}

{% macro spark__recorded_run_window(identifier) -%}
    {%- if not execute or not _run_windows_exists() -%}
        {{- return(none) -}}
    {%- endif -%}
    {%- set found = run_query(
        'select state, run_window from ' ~ _run_windows_relation()
        ~ ' where model = ' ~ _sql_text(identifier)
        ~ ' order by recorded_at desc limit 1'
    ) -%}
    {%- if found.rows | length == 0 or found.rows[0][0] != 'built' -%}
        {{- return(none) -}}
    {%- endif -%}
    {{- return(fromjson(found.rows[0][1])) -}}
{%- endmacro %}
