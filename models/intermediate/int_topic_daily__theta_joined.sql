-- Theta for each user, topic and day of int_topic_daily__aggregated, when var include_theta
-- is on: the topic's theta if it was fitted by the end of the day, else the user's latest
-- overall ability fit (mirt_ability) by then. Empty when include_theta is off. Ephemeral: it
-- is computed inside features_topic_daily: for the days it writes (from anchor_date -
-- lookback_days), or every day when the per-run tables hold all history (a full build).
{%- set recorded = recorded_run_window('int_topic_daily__aggregated') %}
{%- set all_days = recorded is none or recorded.get('read_from') is none %}
with

days as (
    select
        user_id,
        topic_id,
        activity_date
    from {{ ref('int_topic_daily__aggregated') }}
    where
        {{ include_theta() }}
        and {{ on_or_after('activity_date', none if all_days else run_window_start()) }}
),

topic_theta as (
    select
        user_id,
        topic_id,
        theta,
        theta_se,
        estimated_at
    from {{ ref('int_student_topic_thetas__mapped') }}
    -- a NaN or infinite theta or error: the row is skipped (source check is_finite)
    where
        coalesce({{ is_finite_number('theta') }}, true)
        and coalesce({{ is_finite_number('theta_se') }}, true)
),

user_ability as (
    select
        user_id,
        theta,
        theta_se,
        fitted_at
    from {{ ref('int_mirt_abilities__mapped') }}
    -- a NaN or infinite theta or error: the row is skipped (source check is_finite)
    where
        coalesce({{ is_finite_number('theta') }}, true)
        and coalesce({{ is_finite_number('theta_se') }}, true)
),

topic_theta_ranked as (
    select
        days.user_id,
        days.topic_id,
        days.activity_date,
        topic_theta.theta,
        topic_theta.theta_se,
        row_number() over (
            partition by days.user_id, days.topic_id, days.activity_date
            order by topic_theta.estimated_at desc
        ) as fit_rank
    from days
    inner join topic_theta
        on
            days.user_id = topic_theta.user_id
            and days.topic_id = topic_theta.topic_id
            and topic_theta.estimated_at < {{ local_midnight('days.activity_date + 1') }}
),

latest_topic_theta as (
    select
        user_id,
        topic_id,
        activity_date,
        theta,
        theta_se
    from topic_theta_ranked
    where fit_rank = 1
),

user_ability_ranked as (
    select
        days.user_id,
        days.topic_id,
        days.activity_date,
        user_ability.theta,
        user_ability.theta_se,
        row_number() over (
            partition by days.user_id, days.topic_id, days.activity_date
            order by user_ability.fitted_at desc
        ) as fit_rank
    from days
    inner join user_ability
        on
            days.user_id = user_ability.user_id
            and user_ability.fitted_at < {{ local_midnight('days.activity_date + 1') }}
),

latest_user_ability as (
    select
        user_id,
        topic_id,
        activity_date,
        theta,
        theta_se
    from user_ability_ranked
    where fit_rank = 1
)

select
    days.user_id,
    days.topic_id,
    days.activity_date,
    case when by_topic.user_id is not null then by_topic.theta else overall.theta end
        as theta_estimate,
    case when by_topic.user_id is not null then by_topic.theta_se else overall.theta_se end
        as theta_sd
from days
left join latest_topic_theta as by_topic
    on
        days.user_id = by_topic.user_id
        and days.topic_id = by_topic.topic_id
        and days.activity_date = by_topic.activity_date
left join latest_user_ability as overall
    on
        days.user_id = overall.user_id
        and days.topic_id = overall.topic_id
        and days.activity_date = overall.activity_date
