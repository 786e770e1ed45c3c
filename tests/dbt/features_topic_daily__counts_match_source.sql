-- The counts of features_topic_daily add up to the source for every (user, topic, local day) of
-- the run's window [anchor_date - lookback_days, anchor_date]: attempts = distinct valid attempt
-- ids (an id seen twice counts once), correct and hints likewise, and last_seen_at = the latest
-- completed_at. Re-derived from stg_seedtest__attempts with the user id mapped back through
-- int_user_ids. An attempt id whose copies fall in more than one group counts in only one of
-- them, and copies of one id that disagree can only count one way: such groups are held to
-- bounds on attempts, their other columns are not compared.
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
)

select
    expected.user_id,
    expected.topic_id,
    expected.activity_date,
    expected.min_attempts,
    expected.max_attempts,
    features.attempts,
    expected.correct as expected_correct,
    features.correct,
    expected.hints as expected_hints,
    features.hints,
    expected.last_seen_at as expected_last_seen_at,
    features.last_seen_at
from expected
inner join {{ ref('features_topic_daily') }} as features
    on
        expected.user_id = features.user_id
        and expected.topic_id = features.topic_id
        and expected.activity_date = features.date
where
    features.attempts < expected.min_attempts
    or features.attempts > expected.max_attempts
    or (
        expected.is_exact
        and (
            features.attempts <> expected.max_attempts
            or features.correct <> expected.correct
            or features.hints <> expected.hints
            or features.last_seen_at <> expected.last_seen_at
        )
    )
