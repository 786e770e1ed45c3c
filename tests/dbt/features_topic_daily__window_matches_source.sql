{{ config(severity='warn', meta={'check': 'reconcile'}) }}

-- The rows of features_topic_daily in the run's window [anchor_date - lookback_days,
-- anchor_date] against the attempts this run expanded from the source once
-- (int_attempts__windowed: user ids mapped back, local days, one row per attempt id, invalid
-- attempts flagged): a row for each (user, topic, local day) with at least one valid attempt
-- and no other row (the job documentation's "Aggregation coverage" query, per row instead of
-- per day), with the same attempts, correct, hints and last_seen_at. It checks what the
-- window replace left in the table (a day deleted and not re-inserted, a stale row kept), not
-- the expansion, which the Python references test. Plain counts: the table holds each attempt
-- id once, so no count(distinct) (one sort per group) is needed.
{%- set window_start = anchor_date() - modules.datetime.timedelta(days=lookback_days()) %}

with

expected as (
    select
        user_id,
        topic_id,
        activity_date,
        count(*) as attempts,
        count(*) filter (where is_correct) as correct,
        count(*) filter (where hint_used) as hints,
        max(completed_at) as last_seen_at
    from {{ ref('int_attempts__windowed') }}
    where
        is_valid
        and completed_at >= {{ local_midnight(date_literal(window_start)) }}
        and completed_at < {{ anchor_end_ts() }}
    group by user_id, topic_id, activity_date
),

actual as (
    select
        user_id,
        topic_id,
        date as activity_date,
        attempts,
        correct,
        hints,
        last_seen_at
    from {{ ref('features_topic_daily') }}
    where date between {{ date_literal(window_start) }} and {{ date_literal(anchor_date()) }}
),

compared as (
    select
        coalesce(expected.user_id, actual.user_id) as user_id,
        coalesce(expected.topic_id, actual.topic_id) as topic_id,
        coalesce(expected.activity_date, actual.activity_date) as activity_date,
        case
            when expected.user_id is null then 'row for a day without valid attempts'
            when actual.user_id is null then 'no row for a day with valid attempts'
            when
                actual.attempts <> expected.attempts
                or actual.correct <> expected.correct
                or actual.hints <> expected.hints
                or actual.last_seen_at <> expected.last_seen_at
                then 'counts differ'
        end as problem,
        expected.attempts as expected_attempts,
        actual.attempts,
        expected.correct as expected_correct,
        actual.correct,
        expected.hints as expected_hints,
        actual.hints,
        expected.last_seen_at as expected_last_seen_at,
        actual.last_seen_at
    from expected
    full outer join actual
        on
            expected.user_id = actual.user_id
            and expected.topic_id = actual.topic_id
            and expected.activity_date = actual.activity_date
)

select *
from compared
where problem is not null
