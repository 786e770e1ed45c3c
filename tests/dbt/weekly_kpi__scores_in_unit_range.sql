{{ config(tags=['post_write'], enabled=target.type == 'postgres') }}
-- (PostgreSQL only: on a Spark deployment weekly_kpi is written on PostgreSQL, not in Spark.)

-- After the P/S step: P and S in the weekly_kpi rows of this run (the anchor's ISO week,
-- inactive users) are JSON numbers within [0, 1]. Tagged post_write: the pipeline runs it
-- after the write, not in the build before it.
with

scored as (
    select
        kpi.user_id,
        kpi.week_start,
        kpi.kpis -> 'P' as p,
        kpi.kpis -> 'S' as s
    from {{ ref('stg_seedtest__weekly_kpis') }} as kpi
    inner join {{ ref('inactive_users') }} as inactive on kpi.user_id = inactive.user_id
    where
        kpi.week_start = {{ anchor_week_start() }}
        and kpi.is_kpis_object
)

select
    user_id,
    week_start,
    p,
    s
from scored
where
    (p is not null and not (jsonb_typeof(p) = 'number' and (p #>> '{}')::float8 between 0 and 1))
    or (s is not null and not (jsonb_typeof(s) = 'number' and (s #>> '{}')::float8 between 0 and 1))
