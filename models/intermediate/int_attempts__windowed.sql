-- Attempts this run needs: from 27 days before the features window (the improvement index
-- looks back that far) to the end of the anchor day, with the application's user id and the
-- local calendar day. Invalid rows stay, flagged, so the run can report what it skipped.
-- An attempt id seen twice counts once (the latest copy).
with

attempts as (
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
    where {{ in_features_window('attempts.completed_at', lead_in_days=27) }}
),

deduplicated as (
    select distinct on (attempt_id) *
    from attempts
    order by
        attempt_id asc,
        -- a valid copy wins over one without user or topic
        (user_id is not null and nullif(topic_id, '') is not null) desc,
        completed_at desc,
        is_correct desc,
        response_time_ms desc nulls last,
        hint_used desc,
        topic_id asc
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
    user_id is not null
    and nullif(topic_id, '') is not null
    and completed_at is not null as is_valid
from deduplicated
