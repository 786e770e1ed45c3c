{{ config(severity='warn', meta={'check': 'reconcile'}) }}

-- A user is in inactive_users if and only if no source shows activity between the cutoff
-- (local midnight after anchor_date - threshold) and the end of anchor_date (the job
-- documentation's "Verify inactivity detection" query). The sources are read again here from
-- staging, not through the union model. The attempt view is not read: every attempt carries
-- its exam's user and time (completed_at = coalesce(updated_at, created_at) of the exam), so
-- exam_results already holds that activity, without expanding the exams' answers again.
{%- set cutoff_day = anchor_date()
    - modules.datetime.timedelta(days=inactivity_threshold_days())
    + modules.datetime.timedelta(days=1) %}
{%- set cutoff = local_midnight(date_literal(cutoff_day)) %}

with

recent_ids as (
    select user_id
    from {{ ref('stg_seedtest__exam_results') }}
    where activity_at >= {{ cutoff }} and activity_at < {{ anchor_end_ts() }}

    union

    select user_id
    from {{ ref('stg_seedtest__sessions') }}
    where
        coalesce(ended_at, started_at) >= {{ cutoff }}
        and coalesce(ended_at, started_at) < {{ anchor_end_ts() }}
),

recently_active as (
    select distinct {{ app_user_id('recent_ids.user_id') }} as user_id
    from recent_ids
    {{ join_user_ids('recent_ids.user_id') }}
    where recent_ids.user_id is not null
),

expected as (
    select known.user_id
    from {{ ref('user_last_activity') }} as known
    where not exists (
        select 1 from recently_active
        where recently_active.user_id = known.user_id
    )
),

actual as (
    select user_id from {{ ref('inactive_users') }}
)

select
    coalesce(expected.user_id, actual.user_id) as user_id,
    expected.user_id is not null as expected_inactive,
    actual.user_id is not null as found_inactive
from expected
full outer join actual on expected.user_id = actual.user_id
where expected.user_id is null or actual.user_id is null
