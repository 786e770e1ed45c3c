{{ config(materialized='ephemeral') }}

-- Per user and local day (activity_timezone): the questions answered and how many of them
-- right, the exam results the churn inputs summarise (mean and last score in the
-- KPI_LOOKBACK_DAYS window). Read from the first day of the first anchor's window (the
-- anchor spine of churn_user_anchors minus kpi_lookback_days - 1) to the end of anchor_date,
-- so the nightly (one anchor) reads one window of attempts and a backtest its range. An
-- attempt id seen twice counts once, right when any of its copies is.
{%- set spine = churn_anchor_spine() %}
{%- set read_from = spine.start - modules.datetime.timedelta(days=kpi_lookback_days() - 1) %}

with

attempts as (
    select
        {{ app_user_id('attempts.student_id') }} as user_id,
        attempts.attempt_id,
        attempts.is_correct,
        attempts.completed_at
    from {{ ref('stg_seedtest__attempts') }} as attempts
    {{ join_user_ids('attempts.student_id') }}
    where {{ in_window('attempts.completed_at', read_from) }}
),

dated as (
    select
        user_id,
        attempt_id,
        is_correct,
        {{ local_date('completed_at') }} as activity_date
    from attempts
    where user_id is not null and completed_at is not null and attempt_id is not null
),

final as (
    select
        user_id,
        activity_date,
        cast(count(distinct attempt_id) as integer) as questions,
        cast(count(distinct case when is_correct then attempt_id end) as integer) as correct
    from dated
    group by user_id, activity_date
)

select * from final
