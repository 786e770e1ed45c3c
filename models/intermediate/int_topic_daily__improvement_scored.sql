-- The improvement index of each user and topic on each day with attempts: accuracy in the
-- 14 days up to the day against the 14 days before, scaled by exposure and penalised by the
-- uncertainty of the recent accuracy.
with

windows as (
    select
        user_id,
        topic_id,
        activity_date,
        sum(attempts) over recent_days as recent_attempts,
        sum(correct) over recent_days as recent_correct,
        coalesce(sum(attempts) over previous_days, 0) as previous_attempts,
        coalesce(sum(correct) over previous_days, 0) as previous_correct
    from {{ ref('int_topic_daily__aggregated') }}
    window
        -- frames over integer day numbers: the same on every engine
        recent_days as (
            partition by user_id, topic_id order by {{ day_number('activity_date') }}
            range between 13 preceding and current row
        ),
        previous_days as (
            partition by user_id, topic_id order by {{ day_number('activity_date') }}
            range between 27 preceding and 14 preceding
        )
),

rates as (
    select
        user_id,
        topic_id,
        activity_date,
        recent_attempts,
        previous_attempts,
        cast(recent_correct as {{ sql_type('double precision') }}) / nullif(recent_attempts, 0)
            as recent_rate,
        cast(previous_correct as {{ sql_type('double precision') }}) / nullif(previous_attempts, 0)
            as previous_rate
    from windows
)

select
    user_id,
    topic_id,
    activity_date,
    recent_attempts,
    previous_attempts,
    case
        when recent_attempts > 0 and previous_attempts > 0
            then greatest(
                -1.0,
                least(
                    1.0,
                    (recent_rate - previous_rate)
                    * least(1.0, cast(recent_attempts as {{ sql_type('double precision') }}) / 30.0)
                    * (1.0 - least(
                        0.5, 1.96 * sqrt(recent_rate * (1.0 - recent_rate) / recent_attempts)
                    ))
                )
            )
    end as improvement
from rates
