{{
    config(
        materialized='table',
        pre_hook="{{ record_run_window(run_window(attempts_read_from())) }}",
        post_hook="{{ confirm_run_window() }}",
    )
}}

-- The attempts this run needs, expanded from the exams' JSON once per run into a table that
-- the aggregate, the activity model and the source-comparison tests read: from 27 days
-- before the window [anchor_date - lookback_days, anchor_date] (the improvement index looks
-- back that far) to the end of the anchor day, or all history up to it on a full build
-- (first run, --full-refresh). The bounds come from the vars only; the window is recorded
-- (run_windows) so that a model that replaces rows can check the table was built for its run.
-- With the application's user id and the local calendar day. Invalid rows stay, flagged
-- with the reason, so the run can report what it skipped. An attempt id seen twice counts
-- once (a valid copy, else the latest).
{%- set read_from = attempts_read_from() %}
{%- set max_key_bytes = 1000 %}

with

mapped as (
    -- the attempt source's user ids mapped back to the application's, once, here
    select
        attempts.attempt_id,
        {{ app_user_id('attempts.student_id') }} as user_id,
        attempts.topic_id,
        attempts.is_correct,
        attempts.response_time_ms,
        attempts.hint_used,
        attempts.completed_at
    from {{ ref('stg_seedtest__attempts') }} as attempts
    {{ join_user_ids('attempts.student_id') }}
    where {{ in_window('attempts.completed_at', read_from) }}
),

attempts as (
    select
        attempt_id,
        user_id,
        topic_id,
        is_correct,
        response_time_ms,
        hint_used,
        -- an infinite time ('-infinity' on a first build) is no time
        {{ finite_time_or_null('completed_at') }} as completed_at,
        case
            when user_id is null then 'no_user'
            when nullif(topic_id, '') is null then 'no_topic'
            when completed_at is null or not {{ is_finite_time('completed_at') }} then 'no_time'
            -- (date, user_id, topic_id) is features_topic_daily's unique index, whose keys must
            -- fit in a third of a page (2,704 bytes)
            when octet_length(topic_id) > {{ max_key_bytes }} then 'topic_too_long'
            when octet_length(user_id) > {{ max_key_bytes }} then 'user_id_too_long'
        end as invalid_reason
    from mapped
),

-- one row per attempt id: a valid copy wins over an invalid one, then the latest (nulls
-- placed explicitly: engines differ in their defaults)
deduplicated as (
    {{ first_per_key(
        'attempts',
        'attempt_id',
        ['attempt_id', 'user_id', 'topic_id', 'is_correct', 'response_time_ms', 'hint_used',
         'completed_at', 'invalid_reason'],
        ['case when invalid_reason is null then 0 else 1 end asc',
         'completed_at desc nulls first',
         'is_correct desc nulls first',
         'response_time_ms desc nulls last',
         'hint_used desc nulls first',
         'topic_id asc nulls last'],
    ) }}
)

select
    attempt_id,
    user_id,
    topic_id,
    coalesce(is_correct, false) as is_correct,
    coalesce(hint_used, false) as hint_used,
    response_time_ms,
    coalesce(response_time_ms between 0 and 3 * 60 * 60 * 1000, false) as has_valid_time,
    completed_at,
    {{ local_date('completed_at') }} as activity_date,
    invalid_reason is null as is_valid,
    invalid_reason
from deduplicated
