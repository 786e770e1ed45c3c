{{ config(severity='warn', meta={'check': 'reconcile'}) }}

-- The rows of features_topic_daily in the run's window [anchor_date - lookback_days,
-- anchor_date] against the source, read once: a row for each (user, topic, local day) with at
-- least one valid attempt and no other row (the job documentation's "Aggregation coverage"
-- query, per row instead of per day); attempts = distinct valid attempt ids, correct and hints
-- likewise, last_seen_at = the latest completed_at. The valid attempts are re-derived from
-- stg_seedtest__attempts with the user id mapped back through int_user_ids, independently of
-- the intermediate models. An attempt id whose copies fall in more than one group counts in
-- only one of them, and copies of one id that disagree can only count one way: such groups
-- are held to bounds on attempts (and may be missing when they hold nothing else).
{%- set window_start = anchor_date() - modules.datetime.timedelta(days=lookback_days()) %}
with

{{ window_source_attempt_ctes(window_start) }},

-- attempt ids whose copies disagree on what is counted
inexact_attempts as (
    select attempt_versions.attempt_id
    from (
        select distinct
            attempt_id,
            is_correct,
            hint_used,
            completed_at
        from source_attempts
    ) as attempt_versions
    group by attempt_versions.attempt_id
    having count(*) > 1
    union
    select attempt_id from ambiguous_attempts
),

expected as (
    select
        source_attempts.user_id,
        source_attempts.topic_id,
        source_attempts.activity_date,
        count(distinct source_attempts.attempt_id) as max_attempts,
        count(distinct source_attempts.attempt_id)
        filter (where ambiguous_attempts.attempt_id is null) as min_attempts,
        bool_and(inexact_attempts.attempt_id is null) as is_exact,
        count(distinct source_attempts.attempt_id)
        filter (where source_attempts.is_correct) as correct,
        count(distinct source_attempts.attempt_id)
        filter (where source_attempts.hint_used) as hints,
        max(source_attempts.completed_at) as last_seen_at
    from source_attempts
    left join ambiguous_attempts
        on source_attempts.attempt_id = ambiguous_attempts.attempt_id
    left join inexact_attempts
        on source_attempts.attempt_id = inexact_attempts.attempt_id
    group by
        source_attempts.user_id,
        source_attempts.topic_id,
        source_attempts.activity_date
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
                actual.attempts < expected.min_attempts
                or actual.attempts > expected.max_attempts
                then 'attempts differ'
            when
                expected.is_exact
                and (
                    actual.attempts <> expected.max_attempts
                    or actual.correct <> expected.correct
                    or actual.hints <> expected.hints
                    or actual.last_seen_at <> expected.last_seen_at
                )
                then 'counts differ'
        end as problem,
        expected.min_attempts,
        expected.max_attempts,
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
where
    problem is not null
    and not (problem = 'no row for a day with valid attempts' and min_attempts = 0)
