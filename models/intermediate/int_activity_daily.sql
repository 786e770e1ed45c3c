{{
    config(
        materialized='incremental',
        incremental_strategy='window_replace',
        window_column='activity_date',
        catch_up_column='activity_date',
        unique_key=['user_id', 'activity_date', 'activity_source'],
        on_schema_change='append_new_columns',
        partition_by=day_partitions('activity_date'),
        indexes=pg_indexes([
            {'columns': ['activity_date', 'user_id', 'activity_source'], 'unique': true},
            {'columns': ['user_id', 'activity_date']},
        ]),
    )
}}

-- Every user's activity per local day and source (exam_results, attempt, session), with the
-- application's user id, kept incrementally like features_topic_daily (the same window is
-- recomputed whole each run, and days missed since the newest one are caught up), so last
-- activity and the churn inputs never rescan the full history of the application tables.
-- The attempts come from this run's int_attempts__windowed when it was built for this run and
-- covers the days recomputed here (it always does for a nightly run). Otherwise (days missed
-- for longer than the lead-in, or a selection without it) an exam's attempt activity is its
-- own activity when the attempt source holds a row of it: same time (the user-id rule), and
-- the same person, since the uuid form of an exam's user id maps back to that id. Whatever is
-- selected, the rows are right.
-- features_topic_daily.last_seen_at, the fourth activity source, is a mart: the
-- last-activity mart (user_last_activity) reads it, not this intermediate model.
{%- set window_start = incremental_window_start(this.identifier, 'activity_date') %}
{%- set use_windowed = run_window_mismatch('int_attempts__windowed', window_start) is none %}
{%- set windowed = ref('int_attempts__windowed') %}
{%- set windowed_or_empty = relation_or_empty(
    windowed if use_windowed else none, {'user_id': 'text', 'completed_at': 'timestamptz'}
) %}
{%- set attempt_source = ref('stg_seedtest__attempts') %}
{%- set max_key_bytes = 1000 %}

with

exams as (
    select
        user_id,
        session_id,
        activity_at
    from {{ ref('int_exam_results__mapped') }}
    where
        user_id is not null
        and {{ in_window('activity_at', window_start) }}
        and {{ is_finite_time('activity_at') }}
),

-- the attempt source's attempt ids per exam session (only read when the windowed attempts
-- cannot serve this run)
session_attempts as (
    select
        attempts.session_id,
        attempts.attempt_id
    from {{ attempt_source }} as attempts
    where
        {{ (not use_windowed) | string | lower }}
        and {{ in_window('attempts.completed_at', window_start) }}
    group by attempts.session_id, attempts.attempt_id
),

events as (
    select
        user_id,
        activity_at,
        'exam_results' as activity_source
    from exams

    union all

    select
        windowed.user_id,
        windowed.completed_at as activity_at,
        'attempt' as activity_source
    from {{ windowed_or_empty }} as windowed
    where
        windowed.user_id is not null
        and {{ in_window('windowed.completed_at', window_start) }}

    union all

    -- one event per attempt id of the exam's session (as the windowed attempts count)
    select
        exams.user_id,
        exams.activity_at,
        'attempt' as activity_source
    from exams
    inner join session_attempts
        on exams.session_id = session_attempts.session_id

    union all

    select
        user_id,
        activity_at,
        'session' as activity_source
    from {{ ref('int_sessions__mapped') }}
    where
        user_id is not null
        and {{ in_window('activity_at', window_start) }}
        and {{ is_finite_time('activity_at') }}
)

select
    user_id,
    {{ local_date('activity_at') }} as activity_date,
    activity_source,
    max(activity_at) as last_activity_at,
    cast(count(*) as integer) as events
from events
-- an id too long for the unique index is nobody the application can score either
where user_id <> '' and octet_length(user_id) <= {{ max_key_bytes }}
group by user_id, {{ local_date('activity_at') }}, activity_source
