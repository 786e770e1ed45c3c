{{ config(materialized='table') }}

-- One row per (anchor, user inactive as of that anchor): the churn-risk inputs as the nightly
-- run computes them on that anchor (d, k, g of inactive_user_scoring_inputs), the learned
-- model's extra inputs (tenure, total active days, the mean and last exam score of the
-- KPI_LOOKBACK_DAYS window), and the user's next active day after the
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
{%- set double = sql_type('double precision') %}

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

-- the exam results of the days (only those of the anchors' windows are read: see
-- int_exam_scores__aggregated); an answer is activity, so every such day is an activity day
day_scores as (
    select
        {{ byte_order('user_id') }} as user_id,
        activity_date,
        questions,
        correct
    from {{ ref('int_exam_scores__aggregated') }}
),

scored_days as (
    select
        user_days.user_id,
        user_days.activity_date,
        coalesce(day_scores.questions, 0) as questions,
        coalesce(day_scores.correct, 0) as correct
    from user_days
    left join day_scores
        on
            user_days.user_id = day_scores.user_id
            and user_days.activity_date = day_scores.activity_date
),

sequenced as (
    select
        user_id,
        activity_date,
        questions,
        correct,
        row_number() over by_order as days_so_far,
        first_value(activity_date) over by_day as first_active_day,
        lag(activity_date) over by_order as previous_active_day,
        lead(activity_date) over by_order as next_active_day,
        -- running totals of the answers, and a group per day with answers (its following
        -- days without answers join it), to carry the last score forward
        sum(questions) over by_day as questions_so_far,
        sum(correct) over by_day as correct_so_far,
        sum(case when questions > 0 then 1 else 0 end) over by_day as scored_days_so_far,
        case
            when questions > 0 then {{ ratio('cast(correct as ' ~ double ~ ')', 'questions') }}
        end as day_score
    from scored_days
    -- lag, lead and row_number take no frame (Spark refuses one); the running aggregates do
    window
        by_order as (partition by user_id order by activity_date),
        by_day as (partition by user_id order by activity_date rows unbounded preceding)
),

carried as (
    select
        sequenced.*,
        first_value(sequenced.day_score) over by_group as last_score_so_far,
        first_value(sequenced.activity_date) over by_group as last_scored_day
    from sequenced
    window by_group as (
        partition by user_id, scored_days_so_far order by activity_date
        rows unbounded preceding
    )
),

-- the anchors for which the day is the user's last activity day and the user is inactive
last_day_ranges as (
    select
        user_id,
        activity_date,
        days_so_far,
        first_active_day,
        next_active_day,
        questions_so_far,
        correct_so_far,
        case when scored_days_so_far > 0 then last_score_so_far end as last_score_so_far,
        case when scored_days_so_far > 0 then last_scored_day end as last_scored_day,
        greatest(activity_date + {{ threshold }}, {{ first_anchor }}) as from_day,
        least(next_active_day - 1, {{ last_anchor }}) as to_day
    from carried
),

inactive as (
    select
        ranges.user_id,
        ranges.activity_date as last_active_day,
        ranges.days_so_far,
        ranges.first_active_day,
        ranges.next_active_day,
        ranges.questions_so_far,
        ranges.correct_so_far,
        ranges.last_score_so_far,
        ranges.last_scored_day,
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
        -- the answers before the window (the running totals exclude the day itself)
        questions_so_far - questions as questions_before,
        correct_so_far - correct as correct_before,
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
        ranges.questions_before,
        ranges.correct_before,
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
            as active_days,
        cast(coalesce(inactive.questions_so_far - window_first.questions_before, 0) as integer)
            as window_questions,
        cast(coalesce(inactive.correct_so_far - window_first.correct_before, 0) as integer)
            as window_correct,
        -- the last day with answers counts when it is in the window
        case
            when inactive.last_scored_day > inactive.anchor - {{ window_days }}
                then inactive.last_score_so_far
        end as last_score
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
    window_questions,
    cast(case
        when window_questions > 0
            then {{ ratio('cast(window_correct as ' ~ double ~ ')', 'window_questions') }}
    end as {{ sql_type('double precision') }}) as mean_score,
    cast(last_score as {{ sql_type('double precision') }}) as last_score,
    next_active_day,
    cast({{ days_between('anchor', 'next_active_day') }} as integer) as days_to_return
from inputs
