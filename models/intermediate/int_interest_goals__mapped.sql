-- Every interest_goal with the application's user id (the user-id rule), mapped once for this
-- source. Empty when the table is missing.
select
    {{ app_user_id('goals.user_id') }} as user_id,
    goals.user_id as source_user_id,
    goals.topic_id,
    goals.target_level,
    goals.priority,
    goals.created_at
from {{ ref('stg_seedtest__interest_goals') }} as goals
{{ join_user_ids('goals.user_id') }}
