-- Users whose last activity across all sources is before the end of anchor_date minus the
-- inactivity threshold (calendar days in activity_timezone).
{%- set cutoff_day = anchor_date()
    - modules.datetime.timedelta(days=inactivity_threshold_days())
    + modules.datetime.timedelta(days=1) %}

select
    user_id,
    last_activity_at,
    last_activity_source,
    {{ local_midnight(date_literal(cutoff_day)) }} as inactive_before,
    {{ inactivity_threshold_days() }} as threshold_days
from {{ ref('user_last_activity') }}
where last_activity_at < {{ local_midnight(date_literal(cutoff_day)) }}
