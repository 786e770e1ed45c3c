{#
    The settings an incremental table's rows were computed with, recorded per table in the
    registry `incremental_settings` of the project's schema (keyed by model name) (in the transaction that builds
    it). A run whose settings differ would mix rows of two settings inside the table (days
    counted twice or lost after a change of ACTIVITY_TIMEZONE, ids of two mappings), so it
    stops before writing, with one line naming the setting and the rebuild command.

    Recorded: ACTIVITY_TIMEZONE, SOURCE_SCHEMA, MAP_USER_IDS, ATTEMPTS_FROM_EXAM_RESULTS for
    every incremental table, and AGG_INCLUDE_THETA for a table with theta columns
    (features_topic_daily). Not recorded: AGG_LOOKBACK_DAYS, which only says how many days a run
    recomputes, never how a day is computed.

    The first build and --full-refresh record the run's settings; a table built by an earlier
    version (no record) adopts them. Pre-hook of every model (dbt_project.yml): nothing for
    a model that is not incremental, or on Spark (whose tables keep today's behaviour).
#}

{% macro _incremental_settings_relation() -%}
    {{- return(api.Relation.create(
        database=target.get('database'), schema=target.schema,
        identifier=dry_run_alias('incremental_settings')
    )) -}}
{%- endmacro %}

{# name of the environment variable -> value, as this run computes its rows #}
{% macro incremental_settings_of_run() -%}
    {%- set settings = {
        'ACTIVITY_TIMEZONE': activity_timezone(),
        'SOURCE_SCHEMA': source_schema(),
        'MAP_USER_IDS': map_user_ids() | string | lower,
        'ATTEMPTS_FROM_EXAM_RESULTS': attempts_from_exam_results() | string | lower,
    } -%}
    {%- if 'theta_estimate' in model.columns -%}
        {%- do settings.update({'AGG_INCLUDE_THETA': include_theta() | string | lower}) -%}
    {%- endif -%}
    {{- return(settings) -}}
{%- endmacro %}

{% macro check_incremental_settings() -%}
    {{- return(adapter.dispatch('check_incremental_settings', 'seedtest_analytics')()) -}}
{%- endmacro %}

{% macro spark__check_incremental_settings() -%}
    {{- return('') -}}
{%- endmacro %}

{% macro default__check_incremental_settings() -%}
    {%- if not execute or config.get('materialized') != 'incremental' -%}
        {{- return('') -}}
    {%- endif -%}
    {%- set registry = _incremental_settings_relation() -%}
    {%- set current = incremental_settings_of_run() -%}
    {%- if is_incremental() -%}
        {#- created by this hook, so dbt's relation cache does not know it -#}
        {%- set exists = run_query(
            'select to_regclass(' ~ _sql_text(registry | string) ~ ') is not null'
        ).columns[0].values()[0] -%}
        {%- set found = run_query(
            'select cast(settings as text) from ' ~ registry ~ ' where model = '
            ~ _sql_text(model.name)
        ) if exists else none -%}
        {%- set recorded = fromjson(found.columns[0].values()[0])
            if found is not none and found.rows | length > 0 else none -%}
        {%- for name, value in current.items()
            if recorded is not none and name in recorded and recorded[name] != value -%}
            {{- exceptions.raise_compiler_error(
                this.identifier ~ ' not built, nothing written: its rows were computed '
                ~ 'with ' ~ name ~ '=' ~ recorded[name] ~ ', this run has ' ~ name ~ '='
                ~ value ~ '; rebuild it with the new setting: `seedtest-analytics '
                ~ 'rebuild` (or `dbt build --full-refresh --selector nightly`), or set '
                ~ name ~ '=' ~ recorded[name] ~ ' again') -}}
        {%- endfor -%}
    {%- endif -%}
    {#- the settings, and the last anchor the table was built for (built_through: where the
        next night catches up from after an outage, seedtest_analytics/catch_up.py) -#}
    create table if not exists {{ registry }} (
        model text primary key,
        settings jsonb not null,
        recorded_at timestamptz not null,
        built_through date not null
    );
    {%- if is_dry_run() %}
    comment on table {{ registry }} is {{ _sql_text(dry_run_marker()) }};
    {%- endif %}
    insert into {{ registry }} as registry (model, settings, recorded_at, built_through)
    values (
        {{ _sql_text(model.name) }},
        cast({{ _sql_text(tojson(current)) }} as jsonb),
        now(),
        {{ date_literal(anchor_date()) }}
    )
    on conflict (model) do update set
        settings = excluded.settings,
        recorded_at = excluded.recorded_at,
        built_through = {{ 'greatest(registry.built_through, excluded.built_through)'
            if is_incremental() else 'excluded.built_through' }}
{%- endmacro %}
