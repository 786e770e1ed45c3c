-- Coverage of the run's window (the job documentation's "Aggregation coverage" check): for every
-- day in [anchor_date - lookback_days, anchor_date], features_topic_daily has a row for each
-- (user, topic, local day) with at least one valid attempt at the source, and no row for any
-- other (user, topic, day). The source is re-read from stg_seedtest__attempts, independently of
-- the intermediate models, with the user id mapped back through int_user_ids.
-- An attempt id whose copies fall in more than one (user, topic, day) can only count in one of
-- them: a group holding nothing but such ids may be missing.
{%- set window_start = anchor_date() - modules.datetime.timedelta(days=lookback_days()) %}
with

{{ window_source_attempt_ctes(window_start) }},

expected as (
    select
        source_attempts.user_id,
        source_attempts.topic_id,
        source_attempts.activity_date,
        count(distinct source_attempts.attempt_id)
        filter (where ambiguous_attempts.attempt_id is null) as unambiguous_attempts
    from source_attempts
    left join ambiguous_attempts
        on source_attempts.attempt_id = ambiguous_attempts.attempt_id
    group by
        source_attempts.user_id,
        source_attempts.topic_id,
        source_attempts.activity_date
),

actual as (
    select
        user_id,
        topic_id,
        date as activity_date
    from {{ ref('features_topic_daily') }}
    where
        date >= {{ date_literal(window_start) }}
        and date <= {{ date_literal(anchor_date()) }}
)

select
    coalesce(expected.user_id, actual.user_id) as user_id,
    coalesce(expected.topic_id, actual.topic_id) as topic_id,
    coalesce(expected.activity_date, actual.activity_date) as activity_date,
    case
        when actual.user_id is null then 'no row for a day with valid attempts'
        else 'row for a day without valid attempts'
    end as problem
from expected
full outer join actual
    on
        expected.user_id = actual.user_id
        and expected.topic_id = actual.topic_id
        and expected.activity_date = actual.activity_date
where
    expected.user_id is null
    or (actual.user_id is null and expected.unambiguous_attempts > 0)
