-- One row per answered question, read from the application's attempt view, or with var
-- attempts_from_exam_results derived from exam_results by the same rules (the user-id rule; see the
-- macro seedtest_attempt_rows), for speed: the view's STRICT app_user_uuid() cannot be
-- inlined, so PostgreSQL calls it once per question. A filter on completed_at reaches the
-- exam_results index either way. An exam with an empty user_id shows up under md5('') in uuid
-- form: that is no user at all. A subquery, not a CTE: PostgreSQL pulls it up into the
-- models that read this one (see the macro).
select
    attempt_rows.id as attempt_id,
    nullif(attempt_rows.student_id, {{ md5_uuid("''") }}) as student_id,
    attempt_rows.item_id,
    attempt_rows.topic_id,
    attempt_rows.correct as is_correct,
    attempt_rows.response_time_ms,
    attempt_rows.hint_used,
    attempt_rows.completed_at,
    attempt_rows.session_id
from (
    {{ seedtest_attempt_rows(source('seedtest', 'attempt'), source('seedtest', 'exam_results')) }}
) as attempt_rows
