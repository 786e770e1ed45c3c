{{
    config(
        materialized='incremental',
        incremental_strategy='window_replace',
        unique_key=['user_id', 'topic_id', 'date'],
        on_schema_change='append_new_columns',
        partition_by=day_partitions('date'),
        indexes=pg_indexes([
            {'columns': ['date', 'user_id', 'topic_id'], 'unique': true},
            {'columns': ['user_id', 'last_seen_at']},
        ]),
        pre_hook="{{ require_run_window(
            'int_topic_daily__aggregated',
            run_window_start() - modules.datetime.timedelta(days=lead_in_days())
            if is_incremental() else none
        ) }}",
    )
}}

-- Daily learning features per user and topic (replaces aggregate_features_daily). An
-- incremental run recomputes the days [anchor_date - lookback_days, anchor_date] whole; the
-- first run and --full-refresh build every day with data up to anchor_date. The window comes
-- from the vars; the pre-hook stops the run, before anything is deleted, unless the per-run
-- table int_topic_daily__aggregated was built for this run's window (any selection is safe).

select
    daily.user_id,
    daily.topic_id,
    daily.activity_date as date,
    daily.attempts,
    daily.correct,
    daily.avg_time_ms,
    daily.hints,
    theta.theta_estimate,
    theta.theta_sd,
    daily.rt_median,
    improvement.improvement,
    daily.last_seen_at,
    {{ dbt.current_timestamp() }} as computed_at
from {{ ref('int_topic_daily__aggregated') }} as daily
inner join {{ ref('int_topic_daily__improvement_scored') }} as improvement
    on
        daily.user_id = improvement.user_id
        and daily.topic_id = improvement.topic_id
        and daily.activity_date = improvement.activity_date
left join {{ ref('int_topic_daily__theta_joined') }} as theta
    on
        daily.user_id = theta.user_id
        and daily.topic_id = theta.topic_id
        and daily.activity_date = theta.activity_date
where
    daily.activity_date <= {{ date_literal(anchor_date()) }}
    and {{ on_or_after('daily.activity_date', run_window_start() if is_incremental() else none) }}
