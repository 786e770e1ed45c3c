{{
    config(
        materialized='incremental',
        incremental_strategy='window_replace',
        window_column='activity_date',
        catch_up_column='activity_date',
        unique_key=['user_id', 'activity_date', 'activity_source'],
        on_schema_change='append_new_columns',
        indexes=[
            {'columns': ['activity_date', 'user_id', 'activity_source'], 'unique': true},
            {'columns': ['user_id', 'activity_date']},
        ],
    )
}}

-- Every user's activity per local day and source, kept incrementally like
-- features_topic_daily (the same window is recomputed whole each run, and days missed since
-- the newest one are caught up), so last activity and the churn inputs never rescan the full
-- history of the application tables.
{%- set window_start = incremental_window_start(this.identifier, 'activity_date') %}
{%- set features_model = ref('features_topic_daily') %}
{%- set features = load_relation(features_model) if execute else none %}

with

events as (
    select
        {{ app_user_id('exams.user_id') }} as user_id,
        exams.activity_at,
        'exam_results' as activity_source
    from {{ ref('stg_seedtest__exam_results') }} as exams
    {{ join_user_ids('exams.user_id') }}
    where exams.user_id is not null and {{ in_window('exams.activity_at', window_start) }}

    union all

    select
        {{ app_user_id('attempts.student_id') }} as user_id,
        attempts.completed_at as activity_at,
        'attempt' as activity_source
    from {{ ref('stg_seedtest__attempts') }} as attempts
    {{ join_user_ids('attempts.student_id') }}
    where
        attempts.student_id is not null
        and {{ in_window('attempts.completed_at', window_start) }}

    union all

    select
        {{ app_user_id('sessions.user_id') }} as user_id,
        coalesce(sessions.ended_at, sessions.started_at) as activity_at,
        'session' as activity_source
    from {{ ref('stg_seedtest__sessions') }} as sessions
    {{ join_user_ids('sessions.user_id') }}
    where
        sessions.user_id is not null
        and {{ in_window('coalesce(sessions.ended_at, sessions.started_at)', window_start) }}
    {%- if features is not none %}

    union all

    select
        user_id,
        last_seen_at as activity_at,
        'features_topic_daily' as activity_source
    from {{ features }}
    where {{ in_window('last_seen_at', window_start) }}
    {%- endif %}
)

select
    user_id,
    {{ local_date('activity_at') }} as activity_date,
    activity_source,
    max(activity_at) as last_activity_at,
    count(*)::integer as events
from events
where user_id <> ''
group by user_id, {{ local_date('activity_at') }}, activity_source
