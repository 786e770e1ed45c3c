-- After the run, every day of its window [anchor_date - lookback_days, anchor_date] in the
-- incremental table equals what the model computes from scratch (SPEC 3.4): same rows (none
-- left over from a previous run, none missing) and the same values in every column except
-- computed_at. The recomputation joins the intermediate models as the model does.
{%- set window_start = anchor_date() - modules.datetime.timedelta(days=lookback_days()) %}
with

recomputed as (
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
        daily.last_seen_at
    from {{ ref('int_topic_daily__aggregated') }} as daily
    left join {{ ref('int_topic_daily__improvement') }} as improvement
        on
            daily.user_id = improvement.user_id
            and daily.topic_id = improvement.topic_id
            and daily.activity_date = improvement.activity_date
    left join {{ ref('int_topic_daily__theta') }} as theta
        on
            daily.user_id = theta.user_id
            and daily.topic_id = theta.topic_id
            and daily.activity_date = theta.activity_date
    where
        daily.activity_date >= {{ date_literal(window_start) }}
        and daily.activity_date <= {{ date_literal(anchor_date()) }}
),

stored as (
    select
        user_id,
        topic_id,
        date,
        attempts,
        correct,
        avg_time_ms,
        hints,
        theta_estimate,
        theta_sd,
        rt_median,
        improvement,
        last_seen_at
    from {{ ref('features_topic_daily') }}
    where
        date >= {{ date_literal(window_start) }}
        and date <= {{ date_literal(anchor_date()) }}
),

only_recomputed as (
    select
        user_id,
        topic_id,
        date,
        attempts,
        correct,
        avg_time_ms,
        hints,
        theta_estimate,
        theta_sd,
        rt_median,
        improvement,
        last_seen_at
    from recomputed
    except all
    select
        user_id,
        topic_id,
        date,
        attempts,
        correct,
        avg_time_ms,
        hints,
        theta_estimate,
        theta_sd,
        rt_median,
        improvement,
        last_seen_at
    from stored
),

only_stored as (
    select
        user_id,
        topic_id,
        date,
        attempts,
        correct,
        avg_time_ms,
        hints,
        theta_estimate,
        theta_sd,
        rt_median,
        improvement,
        last_seen_at
    from stored
    except all
    select
        user_id,
        topic_id,
        date,
        attempts,
        correct,
        avg_time_ms,
        hints,
        theta_estimate,
        theta_sd,
        rt_median,
        improvement,
        last_seen_at
    from recomputed
)

select
    'missing or different in features_topic_daily' as problem,
    only_recomputed.user_id,
    only_recomputed.topic_id,
    only_recomputed.date,
    only_recomputed.attempts,
    only_recomputed.correct,
    only_recomputed.avg_time_ms,
    only_recomputed.hints,
    only_recomputed.theta_estimate,
    only_recomputed.theta_sd,
    only_recomputed.rt_median,
    only_recomputed.improvement,
    only_recomputed.last_seen_at
from only_recomputed
union all
select
    'stale or different in features_topic_daily' as problem,
    only_stored.user_id,
    only_stored.topic_id,
    only_stored.date,
    only_stored.attempts,
    only_stored.correct,
    only_stored.avg_time_ms,
    only_stored.hints,
    only_stored.theta_estimate,
    only_stored.theta_sd,
    only_stored.rt_median,
    only_stored.improvement,
    only_stored.last_seen_at
from only_stored
