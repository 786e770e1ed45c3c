-- One row per answered question, read from the application's attempt view.
select
    id as attempt_id,
    student_id::text as student_id,
    item_id,
    topic_id,
    correct as is_correct,
    response_time_ms,
    hint_used,
    completed_at,
    session_id
from {{ source('seedtest', 'attempt') }}
