-- One row per user (application id): the last activity up to the end of anchor_date across
-- every source, which source it came from, and each source's own latest time. The sources
-- are int_activity_daily (exam_results, attempt, session) and features_topic_daily's
-- last_seen_at, read here because it is a mart; a user is judged on all of them together
-- (never inactive because one source alone looks stale).
-- Every last_seen_at is the completed_at of a valid attempt of the same user, so it never
-- makes a user's last activity later than the attempt source does, except for days outside
-- the window whose exams were since deleted at the source (features_topic_daily keeps them,
-- a run never touches days outside its window); its days are the attempt source's days
-- too, so only each user's latest is read. When features_topic_daily does not exist yet (a
-- dry run on a new database), its column is null.
{%- set features_model = ref('features_topic_daily') %}
{#- A unit test's input is a fixture without a schema: read it as it is. -#}
{%- if execute and features_model.schema is not none and features_model.identifier is not none %}
    {%- set features = load_relation(features_model) %}
{%- else %}
    {%- set features = features_model if execute else none %}
{%- endif %}
{%- set features_or_empty = relation_or_empty(
    features, {'user_id': 'text', 'last_seen_at': 'timestamptz'}
) %}

with

activity as (
    select
        user_id,
        activity_date,
        activity_source,
        last_activity_at
    from {{ ref('int_activity_daily') }}
    where activity_date <= {{ date_literal(anchor_date()) }}

    union all

    -- each user's latest (its day counts among the activity days; the others are attempt days)
    select
        features.user_id,
        {{ local_date('features.last_activity_at') }} as activity_date,
        'features_topic_daily' as activity_source,
        features.last_activity_at
    from (
        select
            features_rows.user_id,
            max(features_rows.last_seen_at) as last_activity_at
        from {{ features_or_empty }} as features_rows
        where features_rows.last_seen_at < {{ anchor_end_ts() }}
        group by features_rows.user_id
    ) as features
),

per_source as (
    select
        user_id,
        max(last_activity_at) filter (where activity_source = 'exam_results')
            as exam_results_last_at,
        max(last_activity_at) filter (where activity_source = 'features_topic_daily')
            as features_last_at,
        max(last_activity_at) filter (where activity_source = 'attempt') as attempt_last_at,
        max(last_activity_at) filter (where activity_source = 'session') as session_last_at,
        max(last_activity_at) as last_activity_at,
        cast(count(distinct activity_date) as integer) as active_days_total
    from activity
    group by user_id
)

select
    user_id,
    last_activity_at,
    -- on a tie, the source closest to the user's own action
    case last_activity_at
        when session_last_at then 'session'
        when exam_results_last_at then 'exam_results'
        when attempt_last_at then 'attempt'
        else 'features_topic_daily'
    end as last_activity_source,
    exam_results_last_at,
    features_last_at,
    attempt_last_at,
    session_last_at,
    active_days_total
from per_source
