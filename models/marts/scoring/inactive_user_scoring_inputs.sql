-- One row per inactive user with everything P and S need, as of anchor_date, so the Python
-- step reads its whole input in one query: days since the last activity (d), active days and
-- mean gap between them in the KPI_LOOKBACK_DAYS window (k, g), the ability (mu, sd), the
-- goal target, and the weekly_kpi row (week_start) the scores land on.
{%- set anchor = anchor_date() %}
{%- set window_first_day = anchor - modules.datetime.timedelta(days=kpi_lookback_days() - 1) %}

with

window_activity as (
    select
        activity.user_id,
        cast(count(distinct activity.activity_date) as integer) as active_days,
        min(activity.activity_date) as first_active_day,
        max(activity.activity_date) as last_active_day
    from {{ ref('int_activity_daily') }} as activity
    inner join {{ ref('inactive_users') }} as inactive on activity.user_id = inactive.user_id
    where
        activity.activity_date between {{ date_literal(window_first_day) }}
        and {{ date_literal(anchor) }}
    group by activity.user_id
),

goals_ranked as (
    select
        user_id,
        target_level,
        row_number() over (
            partition by user_id
            order by priority desc nulls last, created_at desc
        ) as goal_rank
    from {{ ref('int_interest_goals__mapped') }}
    where
        created_at < {{ anchor_end_ts() }}
        and target_level is not null
),

goals as (
    select
        user_id,
        target_level
    from goals_ranked
    where goal_rank = 1
)

select
    inactive.user_id,
    {{ date_literal(anchor) }} as as_of,
    {{ anchor_week_start() }} as week_start,
    inactive.last_activity_at,
    {{ days_between(local_date('inactive.last_activity_at'), date_literal(anchor)) }}
        as days_inactive,
    coalesce(window_activity.active_days, 0) as active_days,
    cast(case
        when window_activity.active_days >= 2
            then
                {{ ratio(
                    days_between(
                        'window_activity.first_active_day', 'window_activity.last_active_day'
                    ),
                    '(window_activity.active_days - 1.0)',
                ) }}
        else 0.0
    end as {{ sql_type('double precision') }}) as mean_gap_days,
    ability.ability_mean,
    ability.ability_sd,
    ability.ability_source,
    coalesce(goals.target_level, cast({{ default_target() }} as {{ sql_type('double precision') }}))
        as target,
    case when goals.target_level is null then 'default' else 'interest_goal' end as target_source
from {{ ref('inactive_users') }} as inactive
left join window_activity on inactive.user_id = window_activity.user_id
left join {{ ref('user_ability_as_of') }} as ability on inactive.user_id = ability.user_id
left join goals on inactive.user_id = goals.user_id
