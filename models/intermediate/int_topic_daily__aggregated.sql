{{ config(materialized='table') }}

-- Per user, topic and local day: the counts and time statistics of the valid attempts,
-- for every day int_attempts__windowed covers (the features window and its 27-day lead-in).
select
    user_id,
    topic_id,
    activity_date,
    count(*)::integer as attempts,
    count(*) filter (where is_correct)::integer as correct,
    count(*) filter (where hint_used)::integer as hints,
    -- round() on numeric rounds half away from zero
    round(avg(response_time_ms) filter (where has_valid_time))::integer as avg_time_ms,
    round(
        (
            percentile_cont(0.5) within group (order by response_time_ms)
            filter (where has_valid_time)
        )::numeric
    )::integer as rt_median,
    max(completed_at) as last_seen_at
from {{ ref('int_attempts__windowed') }}
where is_valid
group by user_id, topic_id, activity_date
