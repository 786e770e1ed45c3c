-- One row per exam session, with the time the application counts as its activity time.
select
    id as exam_result_id,
    session_id,
    nullif(user_id, '') as user_id,
    created_at,
    updated_at,
    coalesce(updated_at, created_at) as activity_at
from {{ source('seedtest', 'exam_results') }}
