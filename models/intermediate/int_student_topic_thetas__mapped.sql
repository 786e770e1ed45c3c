-- Every student_topic_theta row with the application's user id (the user-id rule), mapped once for
-- this source. Empty when the table is missing.
select
    {{ app_user_id('theta.user_id') }} as user_id,
    theta.user_id as source_user_id,
    theta.topic_id,
    theta.theta,
    theta.theta_se,
    theta.estimated_at
from {{ ref('stg_seedtest__student_topic_thetas') }} as theta
{{ join_user_ids('theta.user_id') }}
