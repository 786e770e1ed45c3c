-- The job documentation's "Aggregation coverage" query (users and records per date) as a test:
-- for every day of the run's window [anchor_date - lookback_days, anchor_date], the number of
-- users, of (user, topic) records and of attempts in features_topic_daily equals what the
-- source's valid attempts give (distinct attempt ids, local days in activity_timezone, user ids
-- mapped back through int_user_ids). A day holding an attempt id whose copies fall in more
-- than one (user, topic, day) is held to upper bounds only.
{%- set window_start = anchor_date() - modules.datetime.timedelta(days=lookback_days()) %}
with

{{ window_source_attempt_ctes(window_start) }},

records as (
    select
        activity_date,
        count(*) as records
    from (
        select distinct
            user_id,
            topic_id,
            activity_date
        from source_attempts
    ) as user_topic_days
    group by activity_date
),

expected as (
    select
        source_attempts.activity_date,
        bool_and(ambiguous_attempts.attempt_id is null) as is_exact,
        count(distinct source_attempts.user_id) as users,
        count(distinct source_attempts.attempt_id) as attempts
    from source_attempts
    left join ambiguous_attempts
        on source_attempts.attempt_id = ambiguous_attempts.attempt_id
    group by source_attempts.activity_date
),

actual as (
    select
        date as activity_date,
        count(distinct user_id) as users,
        count(*) as records,
        sum(attempts) as attempts
    from {{ ref('features_topic_daily') }}
    where
        date >= {{ date_literal(window_start) }}
        and date <= {{ date_literal(anchor_date()) }}
    group by date
)

select
    coalesce(expected.activity_date, actual.activity_date) as activity_date,
    expected.users as expected_users,
    actual.users,
    records.records as expected_records,
    actual.records,
    expected.attempts as expected_attempts,
    actual.attempts
from expected
inner join records
    on expected.activity_date = records.activity_date
full outer join actual
    on expected.activity_date = actual.activity_date
where
    expected.activity_date is null
    or (
        expected.is_exact
        and (
            actual.activity_date is null
            or actual.users <> expected.users
            or actual.records <> records.records
            or actual.attempts <> expected.attempts
        )
    )
    or (
        not expected.is_exact
        and (
            coalesce(actual.users, 0) > expected.users
            or coalesce(actual.records, 0) > records.records
            or coalesce(actual.attempts, 0) > expected.attempts
        )
    )
