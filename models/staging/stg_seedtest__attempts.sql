-- One row per answered question, read from the application's attempt view. An exam with an
-- empty user_id shows up under md5('') in uuid form: that is no user at all.
select
    id as attempt_id,
    nullif(student_id::text, md5('')::uuid::text) as student_id,
    item_id,
    topic_id,
    correct as is_correct,
    response_time_ms,
    hint_used,
    completed_at,
    session_id
from {{ source('seedtest', 'attempt') }}
