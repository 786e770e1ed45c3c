{#
    For the singular tests of features_topic_daily: two CTEs re-deriving the valid attempts of
    the run's window straight from stg_seedtest__attempts (independently of the intermediate
    models), with the user id mapped back through int_user_ids and the local day.
      source_attempts     one row per valid attempt copy in [window_start, end of anchor_date)
      ambiguous_attempts  attempt ids whose copies fall in more than one (user, topic, day):
                          such an id can only count in one of them
    Emits `source_attempts as (...), ambiguous_attempts as (...)` for the caller's `with`.
#}
{% macro window_source_attempt_ctes(window_start) -%}
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
