{{
    config(
        materialized='incremental',
        unique_key='user_uuid',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        indexes=[{'columns': ['user_uuid'], 'unique': true}],
        pre_hook="{{ record_run_window(run_window(none)) }}",
    )
}}

-- The map from the uuid form of a user id back to the application's own id, built from the
-- ids the sources hold in text form. Where two ids share a uuid form, the non-uuid one is the
-- application's (its uuid form is the derived md5); among spellings of one uuid, the one in
-- the application's own tables (exam_results, weekly_kpi, session) wins over the other
-- sources' (any case), and the rest is decided in byte order, whatever the collation.
--
-- Incremental: the first build (and --full-refresh) reads every id; a later run reads only
-- the source rows written since the previous run (a day's margin) or inside this run's window
-- with its lead-in (rows that arrive late), and merges them with what the map knows: a new
-- spelling only replaces a known one when it ranks higher. Its cost grows with the ids that
-- are new, not with every id the sources know. Rows written late with a time older than the
-- window's lead-in and the previous run are picked up by the next --full-refresh.
{%- set known_from = none %}
{%- if is_incremental() %}
    {%- set read_from = run_window_start() - modules.datetime.timedelta(days=lead_in_days()) %}
    {%- set previous = run_query(
        'select min(recorded_at) - interval \'1 day\' from ' ~ _run_windows_relation()
        ~ ' where model = ' ~ _sql_text(this.identifier)
    ) if _run_windows_exists() else none %}
    {%- set previous_at = previous.columns[0].values()[0] if previous is not none else none %}
    {%- if previous_at is not none %}
        {%- set known_from = 'least(' ~ local_midnight(date_literal(read_from))
            ~ ', cast(\'' ~ previous_at.isoformat() ~ '\' as timestamptz))' %}
    {%- endif %}
{%- endif %}
{%- set known_map = this if is_incremental() else none %}
{%- set known_map_or_empty = relation_or_empty(known_map, {
    'user_uuid': 'text', 'app_user_id': 'text', 'is_uuid_shaped': 'boolean',
    'source_rank': 'integer',
}) %}

with

known_ids as (
    select
        user_id,
        0 as source_rank
    from {{ ref('stg_seedtest__exam_results') }}
    {{ where_since('activity_at', known_from) }}
    union
    select
        user_id,
        0 as source_rank
    from {{ ref('stg_seedtest__weekly_kpi') }}
    {{ where_since('created_at', known_from) }}
    union
    select
        user_id,
        0 as source_rank
    from {{ ref('stg_seedtest__sessions') }}
    {{ where_since('coalesce(ended_at, started_at)', known_from, nullable=true) }}
    union
    select
        user_id,
        1 as source_rank
    from {{ ref('stg_seedtest__interest_goals') }}
    {{ where_since('created_at', known_from, nullable=true) }}
    union
    select
        user_id,
        1 as source_rank
    from {{ ref('stg_seedtest__ability_estimates') }}
    {{ where_since('fitted_at', known_from, nullable=true) }}
    union
    select
        user_id,
        1 as source_rank
    from {{ ref('stg_seedtest__student_topic_theta') }}
    {{ where_since('estimated_at', known_from, nullable=true) }}
),

shaped as (
    select
        source_rank,
        user_id as app_user_id,
        {{ uuid_form('user_id') }} as user_uuid,
        {{ is_uuid_shaped('user_id') }} as is_uuid_shaped
    from known_ids
    where user_id is not null and user_id <> ''
),

-- what the map already holds for these uuid forms (nothing on a full build)
known as (
    select
        user_uuid,
        app_user_id,
        is_uuid_shaped,
        source_rank
    from {{ known_map_or_empty }}
    where user_uuid in (select shaped.user_uuid from shaped)
),

candidates as (
    select
        user_uuid,
        app_user_id,
        is_uuid_shaped,
        source_rank
    from shaped

    union all

    select
        user_uuid,
        app_user_id,
        is_uuid_shaped,
        source_rank
    from known
),

ranked as (
    select
        user_uuid,
        app_user_id,
        is_uuid_shaped,
        source_rank,
        row_number() over (
            partition by user_uuid
            order by is_uuid_shaped asc, source_rank asc, app_user_id collate "C" asc
        ) as spelling_rank
    from candidates
)

-- only what is new or changes (the incremental strategy replaces those uuid forms' rows)
select
    ranked.user_uuid,
    ranked.app_user_id,
    ranked.is_uuid_shaped,
    ranked.source_rank
from ranked
left join known
    on
        ranked.user_uuid = known.user_uuid
        and ranked.app_user_id = known.app_user_id
        and ranked.source_rank = known.source_rank
where ranked.spelling_rank = 1 and known.user_uuid is null
