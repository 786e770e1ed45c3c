{#
    For the singular tests of features_topic_daily: two CTEs with the valid attempts of the
    run's window, read from int_attempts__windowed, the table of the window's attempts this
    run expanded from the exams once (user ids mapped, local days, an attempt id seen twice
    kept once, invalid attempts flagged), so the tests do not expand the JSON again.
      source_attempts     one row per valid attempt in [window_start, end of anchor_date)
      ambiguous_attempts  attempt ids whose copies fall in more than one (user, topic, day):
                          such an id can only count in one of them (none, once deduplicated)
    Emits `source_attempts as (...), ambiguous_attempts as (...)` for the caller's `with`.
#}
{% macro window_source_attempt_ctes(window_start) -%}
source_attempts as (
    select
        attempts.attempt_id,
        attempts.user_id,
        attempts.topic_id,
        attempts.activity_date,
        attempts.is_correct,
        attempts.hint_used,
        attempts.completed_at
    from {{ ref('int_attempts__windowed') }} as attempts
    where
        attempts.is_valid
        and attempts.completed_at >= {{ local_midnight(date_literal(window_start)) }}
        and attempts.completed_at < {{ anchor_end_ts() }}
),

ambiguous_attempts as (
    select attempt_groups.attempt_id
    from (
        select distinct
            attempt_id,
            user_id,
            topic_id,
            activity_date
        from source_attempts
    ) as attempt_groups
    group by attempt_groups.attempt_id
    having count(*) > 1
)
{%- endmacro %}
