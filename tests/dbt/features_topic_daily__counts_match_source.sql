-- The counts of features_topic_daily add up to the source for every (user, topic, local day) of
-- the run's window [anchor_date - lookback_days, anchor_date]: attempts = distinct valid attempt
-- ids (an id seen twice counts once), correct and hints likewise, and last_seen_at = the latest
-- completed_at. Re-derived from stg_seedtest__attempts with the user id mapped back through
-- int_user_ids. An attempt id whose copies fall in more than one group counts in only one of
-- them: such groups are held to bounds on attempts, their other columns are not compared.
{%- set window_start = anchor_date() - modules.datetime.timedelta(days=lookback_days()) %}
with

source_attempts as (
    select
        attempts.attempt_id,
        {{ app_user_id('attempts.student_id') }} as user_id,
        attempts.topic_id,
        {{ local_date('attempts.completed_at') }} as activity_date,
        coalesce(attempts.is_correct, false) as is_correct,
        coalesce(attempts.hint_used, false) as hint_used,
        attempts.completed_at
    from {{ ref('stg_seedtest__attempts') }} as attempts
    {{ join_user_ids('attempts.student_id') }}
    where
        attempts.student_id is not null
        and nullif(attempts.topic_id, '') is not null
        and attempts.completed_at >= {{ local_midnight(date_literal(window_start)) }}
        and attempts.completed_at < {{ anchor_end_ts() }}
),

groups_per_attempt as (
    select
        attempt_id,
        count(distinct (user_id, topic_id, activity_date)) as n_groups,
        -- copies of one id within a group that disagree cannot be counted exactly either
        count(distinct (is_correct, hint_used, completed_at)) as n_versions
    from source_attempts
    group by attempt_id
),

expected as (
    select
        source_attempts.user_id,
        source_attempts.topic_id,
        source_attempts.activity_date,
        count(distinct source_attempts.attempt_id) as max_attempts,
        count(distinct source_attempts.attempt_id)
            filter (where groups_per_attempt.n_groups = 1) as min_attempts,
        bool_and(groups_per_attempt.n_groups = 1 and groups_per_attempt.n_versions = 1)
            as is_exact,
        count(distinct source_attempts.attempt_id)
            filter (where source_attempts.is_correct) as correct,
        count(distinct source_attempts.attempt_id)
            filter (where source_attempts.hint_used) as hints,
        max(source_attempts.completed_at) as last_seen_at
    from source_attempts
    inner join groups_per_attempt
        on source_attempts.attempt_id = groups_per_attempt.attempt_id
    group by
        source_attempts.user_id,
        source_attempts.topic_id,
        source_attempts.activity_date
),

compared as (
    select
        expected.user_id,
        expected.topic_id,
        expected.activity_date,
        expected.min_attempts,
        expected.max_attempts,
        expected.is_exact,
        expected.correct as expected_correct,
        expected.hints as expected_hints,
        expected.last_seen_at as expected_last_seen_at,
        features.attempts,
        features.correct,
        features.hints,
        features.last_seen_at
    from expected
    inner join {{ ref('features_topic_daily') }} as features
        on
            expected.user_id = features.user_id
            and expected.topic_id = features.topic_id
            and expected.activity_date = features.date
)

select *
from compared
where
    attempts < min_attempts
    or attempts > max_attempts
    or (
        is_exact
        and (
            attempts <> max_attempts
            or correct <> expected_correct
            or hints <> expected_hints
            or last_seen_at <> expected_last_seen_at
        )
    )
