-- Every session with the application's user id (the user-id rule), mapped once for this source, and
-- its activity time coalesce(ended_at, started_at). Empty when the session table is missing.
select
    sessions.session_id,
    {{ app_user_id('sessions.user_id') }} as user_id,
    sessions.user_id as source_user_id,
    sessions.started_at,
    sessions.ended_at,
    coalesce(sessions.ended_at, sessions.started_at) as activity_at
from {{ ref('stg_seedtest__sessions') }} as sessions
{{ join_user_ids('sessions.user_id') }}
