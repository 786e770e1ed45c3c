{{
    config(
        materialized='table',
        pre_hook="{{ record_run_window(recorded_run_window('int_attempts__windowed')) }}",
        post_hook="{{ confirm_run_window() }}",
    )
}}

-- Per user, topic and local day: the counts and time statistics of the valid attempts,
-- for every day int_attempts__windowed covers (the features window and its 27-day lead-in,
-- or all history on a full build). Built by every run; it records the window of the attempt
-- table it was built from (run_windows), which features_topic_daily checks before it
-- replaces its days.
select
    user_id,
    topic_id,
    activity_date,
    cast(count(*) as integer) as attempts,
    cast(count(*) filter (where is_correct) as integer) as correct,
    cast(count(*) filter (where hint_used) as integer) as hints,
    -- rounded half away from zero (as round() on numeric, the avg of integers on PostgreSQL)
    cast(round(avg(response_time_ms) filter (where has_valid_time)) as integer) as avg_time_ms,
    cast({{ round_half_away(
        'percentile_cont(0.5) within group (order by response_time_ms)'
        ~ ' filter (where has_valid_time)'
    ) }} as integer) as rt_median,
    max(completed_at) as last_seen_at
from {{ ref('int_attempts__windowed') }}
where is_valid
group by user_id, topic_id, activity_date
