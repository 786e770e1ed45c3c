{{ config(materialized='table') }}

-- One row per (anchor, user inactive as of that anchor): the churn-risk inputs as the nightly
-- run computes them on that anchor (d, k, g of inactive_user_scoring_inputs), the learned
-- model's extra inputs (tenure, total active days), and the user's next active day after the
-- anchor, which is the backtest's label. Every input uses only activity days up to the
-- anchor; only next_active_day / days_to_return look past it.
--
-- Anchors: churn_anchor_start, + churn_anchor_every, ... up to churn_anchor_end (vars; see
-- macros/vars/churn_anchor_spine.sql); without them the one day anchor_date. A table built by
-- the run (a view would keep the run's dates in its definition): the backtest reads it once,
-- the nightly P/S step reads it in the logistic mode.
--
-- Set-based over the activity days: an activity day d with next activity day n is the user's
-- last day as of every anchor in [d + threshold, n - 1], and it is the first day of the
-- user's KPI_LOOKBACK_DAYS window for every anchor in [max(d, p + L), d + L - 1] (p the day
-- before it), so each (anchor, user) pair is generated once from a range, without joining
-- every anchor to every day.
{%- set spine = churn_anchor_spine() %}
{%- set first_anchor = date_literal(spine.start) %}
{%- set last_anchor = date_literal(spine.end) %}
{%- set every = spine.every %}
{%- set threshold = inactivity_threshold_days() %}
{%- set window_days = kpi_lookback_days() %}

with

-- user_id in the "C" collation: the sorts and joins on it below then compare bytes, about
-- twice as fast over millions of rows as a linguistic collation (equality is the same).
user_days as (
    select
        {{ byte_order('user_id') }} as user_id,
        activity_date
    from {{ ref('int_activity_daily') }}
    where activity_date <= {{ date_literal(anchor_date()) }}
    group by {{ byte_order('user_id') }}, activity_date
),

sequenced as (
    select
        user_id,
        activity_date,
        row_number() over by_day as days_so_far,
        first_value(activity_date) over by_day as first_active_day,
        lag(activity_date) over by_day as previous_active_day,
        lead(activity_date) over by_day as next_active_day
    from user_days
    window by_day as (partition by user_id order by activity_date)
),

-- the anchors for which the day is the user's last activity day and the user is inactive
last_day_ranges as (
    select
        user_id,
        activity_date,
        days_so_far,
        first_active_day,
        next_active_day,
        greatest(activity_date + {{ threshold }}, {{ first_anchor }}) as from_day,
        least(next_active_day - 1, {{ last_anchor }}) as to_day
    from sequenced
),

inactive as (
    select
        ranges.user_id,
        ranges.activity_date as last_active_day,
        ranges.days_so_far,
        ranges.first_active_day,
        ranges.next_active_day,
        {{ first_anchor }} + anchor_index * {{ every }} as anchor
    from last_day_ranges as ranges
    {{ join_series(
        int_div(days_between(first_anchor, 'ranges.from_day') ~ ' + ' ~ (every - 1), every),
        int_div(days_between(first_anchor, 'ranges.to_day'), every),
        'anchor_index',
    ) }}
    where ranges.to_day >= ranges.from_day
),

-- the anchors (of an inactive user) for which the day is the first one of the window
window_first_ranges as (
    select
        user_id,
        activity_date,
        days_so_far,
        greatest(
            activity_date + {{ threshold }},
            previous_active_day + {{ window_days }},
            {{ first_anchor }}
        ) as from_day,
        least(activity_date + {{ window_days - 1 }}, {{ last_anchor }}) as to_day
    from sequenced
),

window_first as (
    select
        ranges.user_id,
        ranges.activity_date as first_window_day,
        ranges.days_so_far,
        {{ first_anchor }} + anchor_index * {{ every }} as anchor
    from window_first_ranges as ranges
    {{ join_series(
        int_div(days_between(first_anchor, 'ranges.from_day') ~ ' + ' ~ (every - 1), every),
        int_div(days_between(first_anchor, 'ranges.to_day'), every),
        'anchor_index',
    ) }}
    where ranges.to_day >= ranges.from_day
),

inputs as (
    select
        inactive.anchor,
        inactive.user_id,
        inactive.last_active_day,
        inactive.first_active_day,
        inactive.next_active_day,
        inactive.days_so_far,
        window_first.first_window_day,
        cast(coalesce(inactive.days_so_far - window_first.days_so_far + 1, 0) as integer)
            as active_days
    from inactive
    left join window_first
        on inactive.user_id = window_first.user_id and inactive.anchor = window_first.anchor
)

select
    anchor,
    user_id,
    last_active_day,
    cast({{ days_between('last_active_day', 'anchor') }} as integer) as days_inactive,
    active_days,
    -- as inactive_user_scoring_inputs computes it, so the heuristic S is the nightly's
    cast(case
        when active_days >= 2
            then {{ ratio(
                days_between('first_window_day', 'last_active_day'), '(active_days - 1.0)'
            ) }}
        else 0.0
    end as {{ sql_type('double precision') }}) as mean_gap_days,
    first_active_day,
    cast({{ days_between('first_active_day', 'anchor') }} as integer) as tenure_days,
    cast(days_so_far as integer) as active_days_total,
    next_active_day,
    cast({{ days_between('anchor', 'next_active_day') }} as integer) as days_to_return
from inputs
