-- Every exam with the application's user id (the user-id rule; an exam stored under the uuid
-- form of a known id belongs to that id), mapped once for this source. Ephemeral: read with
-- a window on activity_at, which PostgreSQL pushes down to the exam_results index.
select
    exams.exam_result_id,
    exams.session_id,
    {{ app_user_id('exams.user_id') }} as user_id,
    exams.user_id as source_user_id,
    exams.created_at,
    exams.updated_at,
    exams.activity_at
from {{ ref('stg_seedtest__exam_results') }} as exams
{{ join_user_ids('exams.user_id') }}
