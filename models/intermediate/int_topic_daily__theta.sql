-- Theta for each user, topic and day of the features window, when var include_theta is on:
-- the topic's theta if it was fitted by the end of the day, else the user's latest overall
-- ability fit (mirt_ability) by then. Empty when include_theta is off.
{%- set window_start = features_window_start() %}
with

days as (
    select
        user_id,
        topic_id,
        activity_date
    from {{ ref('int_topic_daily__aggregated') }}
    where
        {{ include_theta() }}
        and {{ on_or_after('activity_date', window_start) }}
),

topic_theta as (
    select
        {{ app_user_id('theta.user_id') }} as user_id,
        theta.topic_id,
        theta.theta,
        theta.theta_se,
        theta.estimated_at
    from {{ ref('stg_seedtest__student_topic_theta') }} as theta
    {{ join_user_ids('theta.user_id') }}
),

user_ability as (
    select
        {{ app_user_id('ability.user_id') }} as user_id,
        ability.theta,
        ability.theta_se,
        ability.fitted_at
    from {{ ref('stg_seedtest__mirt_ability') }} as ability
    {{ join_user_ids('ability.user_id') }}
),

latest_topic_theta as (
    select distinct on (days.user_id, days.topic_id, days.activity_date)
        days.user_id,
        days.topic_id,
        days.activity_date,
        topic_theta.theta,
        topic_theta.theta_se
    from days
    inner join topic_theta
        on
            days.user_id = topic_theta.user_id
            and days.topic_id = topic_theta.topic_id
            and topic_theta.estimated_at < {{ local_midnight('days.activity_date + 1') }}
    order by
        days.user_id asc,
        days.topic_id asc,
        days.activity_date asc,
        topic_theta.estimated_at desc
),

latest_user_ability as (
    select distinct on (days.user_id, days.topic_id, days.activity_date)
        days.user_id,
        days.topic_id,
        days.activity_date,
        user_ability.theta,
        user_ability.theta_se
    from days
    inner join user_ability
        on
            days.user_id = user_ability.user_id
            and user_ability.fitted_at < {{ local_midnight('days.activity_date + 1') }}
    order by
        days.user_id asc,
        days.topic_id asc,
        days.activity_date asc,
        user_ability.fitted_at desc
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
