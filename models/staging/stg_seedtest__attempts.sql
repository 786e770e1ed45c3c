-- One row per answered question, read from the application's attempt view, or with var
-- attempts_from_exam_results derived from exam_results by the same rules (SPEC 2.1; see the
-- macro seedtest_attempt_rows), for speed: the view's STRICT app_user_uuid() cannot be
-- inlined, so PostgreSQL calls it once per question. A filter on completed_at reaches the
-- exam_results index either way. An exam with an empty user_id shows up under md5('') in uuid
-- form: that is no user at all.
with

attempt_rows as (
    {{ seedtest_attempt_rows(source('seedtest', 'attempt'), source('seedtest', 'exam_results')) }}
)

select
    id as attempt_id,
    nullif(student_id, cast(cast(md5('') as uuid) as text)) as student_id,
    item_id,
    topic_id,
    correct as is_correct,
    response_time_ms,
    hint_used,
    completed_at,
    session_id
from attempt_rows
