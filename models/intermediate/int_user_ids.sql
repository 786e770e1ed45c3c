{{
    config(
        materialized='incremental' if target.type == 'postgres' else 'table',
        unique_key='user_uuid',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        indexes=pg_indexes([{'columns': ['user_uuid'], 'unique': true}]),
        pre_hook="{{ record_run_window(run_window(none)) }}",
        post_hook="{{ confirm_run_window() }}",
    )
}}

-- The map from the uuid form of a user id back to the application's own id, built from the
-- ids the sources hold in text form. Where two ids share a uuid form, the non-uuid one is the
-- application's (its uuid form is the derived md5); among spellings of one uuid, the one in
-- the application's own tables (exam_results, weekly_kpi, session) wins over the other
-- sources' (any case), and the rest is decided in byte order, whatever the collation.
--
-- Incremental: the first build (and --full-refresh) reads every id. A later run reads only
-- the source rows written since its previous run (a day's margin), and for the sources of
-- dated events (exam_results, session, and the small ability, goal and theta tables) also
-- those inside this run's window with its lead-in (rows that arrive late); weekly_kpi rows
-- are stamped when written (created_at), so it reads those written since the previous run.
-- Ids the map already holds as they are drop out at once (an index lookup); the rest is
-- merged with what the map knows: a new spelling only replaces a known one when it ranks
-- higher. Its cost grows with the rows and ids that are new, not with every id the sources
-- know. A row written late with a time older than both is picked up by a --full-refresh.
-- On Spark (parquet has no row-level delete) the map is a table rebuilt from every id by
-- each run: the full build's result.
{%- set events_from = none %}
{%- set written_from = none %}
{#- a map built by an earlier version (no ranks) is merged from every id, once -#}
{%- set incremental = is_incremental() and 'source_rank' in (
    adapter.get_columns_in_relation(this) | map(attribute='name') | list
) %}
{%- if incremental %}
    {%- set read_from = run_window_start() - modules.datetime.timedelta(days=lead_in_days()) %}
    {%- set previous = run_query(
        'select min(recorded_at) - interval \'1 day\' from ' ~ _run_windows_relation()
        ~ ' where model = ' ~ _sql_text(this.identifier)
    ) if _run_windows_exists() else none %}
    {%- set previous_at = previous.columns[0].values()[0] if previous is not none else none %}
    {%- if previous_at is not none %}
        {%- set written_from = 'cast(\'' ~ previous_at.isoformat() ~ '\' as '
            ~ sql_type('timestamptz') ~ ')' %}
        {%- set events_from = 'least(' ~ local_midnight(date_literal(read_from))
            ~ ', ' ~ written_from ~ ')' %}
    {%- endif %}
{%- endif %}
{%- set known_map = this if incremental else none %}
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
    {{ where_since('activity_at', events_from) }}
    union
    select
        user_id,
        0 as source_rank
    from {{ ref('stg_seedtest__weekly_kpis') }}
    {{ where_since('created_at', written_from) }}
    union
    select
        user_id,
        0 as source_rank
    from {{ ref('stg_seedtest__sessions') }}
    {{ where_since('coalesce(ended_at, started_at)', events_from, nullable=true) }}
    union
    select
        user_id,
        1 as source_rank
    from {{ ref('stg_seedtest__interest_goals') }}
    {{ where_since('created_at', events_from, nullable=true) }}
    union
    select
        user_id,
        1 as source_rank
    from {{ ref('stg_seedtest__ability_estimates') }}
    {{ where_since('fitted_at', events_from, nullable=true) }}
    union
    select
        user_id,
        1 as source_rank
    from {{ ref('stg_seedtest__student_topic_thetas') }}
    {{ where_since('estimated_at', events_from, nullable=true) }}
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

-- the ids the map does not already hold as they are (the same spelling, ranked as well)
new_ids as (
    select
        shaped.source_rank,
        shaped.app_user_id,
        shaped.user_uuid,
        shaped.is_uuid_shaped
    from shaped
    -- a subquery per id (an aggregate keeps it one: an index lookup on user_uuid), not an
    -- anti-join, for which the planner would hash the whole map
    where (
        select count(*) from {{ known_map_or_empty }} as known
        where
            known.user_uuid = shaped.user_uuid
            and known.app_user_id = shaped.app_user_id
            and known.source_rank <= shaped.source_rank
    ) = 0
),

-- what the map already holds for these uuid forms (nothing on a full build)
known as (
    select
        known_map.user_uuid,
        known_map.app_user_id,
        known_map.is_uuid_shaped,
        known_map.source_rank
    from {{ known_map_or_empty }} as known_map
    where known_map.user_uuid in (select new_ids.user_uuid from new_ids)
),

candidates as (
    select
        user_uuid,
        app_user_id,
        is_uuid_shaped,
        source_rank
    from new_ids

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
            order by is_uuid_shaped asc, source_rank asc, {{ byte_order('app_user_id') }} asc
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
