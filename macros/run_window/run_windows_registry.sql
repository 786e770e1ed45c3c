{#
    The per-run tables (int_attempts__windowed, int_topic_daily__aggregated, and the id map
    int_user_ids) are rebuilt by every run for its window. Each records the window it was
    built for in the registry table `run_windows` of the project's schema, and a model that
    deletes rows (features_topic_daily) checks the record before it starts: a table built for
    another anchor, time zone or id mapping, or for a window that does not cover the days it
    replaces, stops the run before anything is deleted. So any selection (`--select
    features_topic_daily`, `features_topic_daily+`, `+features_topic_daily`, the selectors)
    either computes the right rows or fails with the table untouched.

    On PostgreSQL the record is made in the model's transaction, so it changes if and only if
    the table does. Spark has no transactions: a record cannot change together with its
    table, so there the registry is a log (parquet, appended to): the pre-hook
    record_run_window appends the window of the build that starts (state `building`), the
    post-hook confirm_run_window, which runs only when the build succeeded, appends it again
    as `built`, and recorded_run_window reads a model's latest entry, which counts only when
    it is `built`. A build that failed (or is still running) thus has no recorded window, and
    a model that checks it (require_run_window) stops before it deletes anything. (dbt-spark
    drops a parquet table before it re-creates it, so a failed build leaves no table rather
    than a stale one.)
#}

{# What a per-run table built now, reading from `read_from` (a date or none), depends on. #}
{% macro run_window(read_from) -%}
    {{- return({
        'anchor_date': anchor_date().isoformat(),
        'read_from': read_from.isoformat() if read_from is not none else none,
        'activity_timezone': activity_timezone(),
        'map_user_ids': map_user_ids(),
        'attempts_from_exam_results': attempts_from_exam_results(),
        'source_schema': source_schema(),
    }) -}}
{%- endmacro %}

{# A SQL string literal of `value` (single quotes doubled). #}
{% macro _sql_text(value) -%}
    '{{ value | string | replace("'", "''") }}'
{%- endmacro %}

{% macro _run_windows_relation(read=none) -%}
    {{- return(api.Relation.create(
        database=read.database if read is not none else target.get('database'),
        schema=read.schema if read is not none else target.schema,
        identifier=dry_run_alias('run_windows')
    )) -}}
{%- endmacro %}

{# Whether the registry exists (created by a hook, so dbt's relation cache does not know it). #}
{% macro _run_windows_exists() -%}
    {{- return(adapter.dispatch('_run_windows_exists', 'seedtest_analytics')()) -}}
{%- endmacro %}

{% macro default___run_windows_exists() -%}
    {%- set found = run_query(
        'select to_regclass(' ~ _sql_text(_run_windows_relation() | string) ~ ') is not null'
    ) -%}
    {{- return(found.columns[0].values()[0]) -}}
{%- endmacro %}

{% macro spark___run_windows_exists() -%}
    {%- set registry = _run_windows_relation() -%}
    {%- set found = run_query(
        'show tables in ' ~ registry.schema ~ " like '" ~ registry.identifier ~ "'"
    ) -%}
    {{- return(found.rows | length > 0) -}}
{%- endmacro %}

{#
    Pre-hook of a per-run table: records `window` (from run_window) for this model. It runs in
    the model's transaction, so the record changes if and only if the table does. (Spark has
    no transactions: see the top of this file, and confirm_run_window, the post-hook.)
#}
{% macro record_run_window(window) -%}
    {{- adapter.dispatch('record_run_window', 'seedtest_analytics')(window) -}}
{%- endmacro %}

{% macro default__record_run_window(window) -%}
    {%- if not execute -%}
        {{- return('select 1') -}}
    {%- endif -%}
    {%- set registry = _run_windows_relation() -%}
    create table if not exists {{ registry }} (
        model text primary key,
        run_window jsonb not null,
        recorded_at timestamptz not null,
        invocation_id text not null
    );
    {#- the table the window belongs to (set by confirm_run_window): a copy or a clone of it
        from elsewhere is another relation -#}
    alter table {{ registry }} add column if not exists relation_oid oid;
    {%- if is_dry_run() %}
    comment on table {{ registry }} is {{ _sql_text(dry_run_marker()) }};
    {%- endif %}
    insert into {{ registry }} (model, run_window, recorded_at, invocation_id)
    values (
        {{ _sql_text(this.identifier) }},
        cast({{ _sql_text(tojson(window)) }} as jsonb),
        now(),
        {{ _sql_text(invocation_id) }}
    )
    on conflict (model) do update set
        run_window = excluded.run_window,
        recorded_at = excluded.recorded_at,
        invocation_id = excluded.invocation_id,
        relation_oid = null
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

{#
    Post-hook of a per-run table, after its pre-hook record_run_window, in the same
    transaction: the record names the table just built (its oid), so a reader can tell the
    table of the record from a copy or clone of a table built elsewhere, for another window.
#}
{% macro confirm_run_window() -%}
    {{- adapter.dispatch('confirm_run_window', 'seedtest_analytics')() -}}
{%- endmacro %}

{% macro default__confirm_run_window() -%}
    {%- if not execute -%}
        {{- return('select 1') -}}
    {%- endif -%}
    update {{ _run_windows_relation() }}
    set relation_oid = to_regclass({{ _sql_text(this | string) }})
    where model = {{ _sql_text(this.identifier) }}
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

{# The window recorded for the per-run table `identifier` (a dict), or none. #}
{% macro recorded_run_window(identifier) -%}
    {{- return(adapter.dispatch('recorded_run_window', 'seedtest_analytics')(identifier)) -}}
{%- endmacro %}

{#
    The record is read where the relation read is (`ref(identifier)`: in another schema when
    deferred), and only counts when it names that very relation: a clone or copy of the table
    (another oid) has no recorded window. A record of an earlier version (no oid) counts.
#}
{% macro default__recorded_run_window(identifier) -%}
    {%- if not execute -%}
        {{- return(none) -}}
    {%- endif -%}
    {%- set read = ref(identifier) -%}
    {%- set registry = _run_windows_relation(read) -%}
    {%- set found = run_query(
        'select to_regclass(' ~ _sql_text(registry | string) ~ ') is not null'
    ) -%}
    {%- if not found.columns[0].values()[0] -%}
        {{- return(none) -}}
    {%- endif -%}
    {%- set found = run_query(
        'select cast(run_window as text), relation_oid is null'
        ~ ' or relation_oid = to_regclass(' ~ _sql_text(read | string) ~ ')'
        ~ ' from ' ~ registry ~ ' where model = ' ~ _sql_text(dry_run_alias(identifier))
    ) if 'relation_oid' in (adapter.get_columns_in_relation(registry) | map(attribute='name'))
    else run_query(
        'select cast(run_window as text), true from ' ~ registry
        ~ ' where model = ' ~ _sql_text(dry_run_alias(identifier))
    ) -%}
    {%- if found.rows | length == 0 or not found.rows[0][1] -%}
        {{- return(none) -}}
    {%- endif -%}
    {{- return(fromjson(found.rows[0][0])) -}}
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

{#
    Why the per-run table `identifier` cannot serve a model that needs the days from
    `needed_from` (a date, or none for all history) up to this run's anchor: a sentence, or
    none when it can.
#}
{% macro run_window_mismatch(identifier, needed_from) -%}
    {%- set recorded = recorded_run_window(identifier) -%}
    {%- set current = run_window(needed_from) -%}
    {%- if recorded is none -%}
        {{- return(identifier ~ ' has no recorded window of its own (not built by this version'
            ~ ' of the project, or a copy or clone of a table built elsewhere)') -}}
    {%- endif -%}
    {%- for key in ['anchor_date', 'activity_timezone', 'map_user_ids',
                    'attempts_from_exam_results', 'source_schema'] -%}
        {%- if recorded.get(key) != current[key] -%}
            {{- return(identifier ~ ' was built for ' ~ key ~ '=' ~ recorded.get(key)
                ~ ', this run has ' ~ key ~ '=' ~ current[key]) -}}
        {%- endif -%}
    {%- endfor -%}
    {%- set read_from = recorded.get('read_from') -%}
    {%- if read_from is not none and (needed_from is none or read_from > current.read_from) -%}
        {{- return(identifier ~ ' holds the days from ' ~ read_from ~ ', this run needs '
            ~ (current.read_from or 'all history')) -}}
    {%- endif -%}
    {{- return(none) -}}
{%- endmacro %}

{#
    Pre-hook of a model that replaces rows from the per-run table `identifier`: stops the run,
    before anything is deleted, unless that table was built for this run's vars and covers the
    days from `needed_from` (none: all history, for a first build or --full-refresh).
#}
{% macro require_run_window(identifier, needed_from) -%}
    {%- if not execute -%}
        {{- return('select 1') -}}
    {%- endif -%}
    {%- set problem = run_window_mismatch(identifier, needed_from) -%}
    {%- if problem is not none -%}
        {%- if needed_from is none -%}
            {%- set remedy = 'its first build (and --full-refresh) reads all history: run `dbt '
                ~ 'build --full-refresh --select +' ~ this.identifier ~ '` (or a selector)' -%}
        {%- else -%}
            {%- set remedy = 'build it with its parents: `dbt build --select +'
                ~ this.identifier ~ '` or a selector of selectors.yml' -%}
        {%- endif -%}
        {{- exceptions.raise_compiler_error(
            this.identifier ~ ' not built, nothing deleted: ' ~ problem ~ '; ' ~ remedy
        ) -}}
    {%- endif -%}
    select 1
{%- endmacro %}
