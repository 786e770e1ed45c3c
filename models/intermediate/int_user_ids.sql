{{ config(materialized='table', indexes=[{'columns': ['user_uuid'], 'unique': true}]) }}

-- The map from the uuid form of a user id back to the application's own id, built from
-- every id the sources hold in text form. Where two ids share a uuid form, the non-uuid one
-- is the application's (its uuid form is the derived md5); among spellings of one uuid, the
-- one in the application's own tables (exam_results, weekly_kpi, session) wins over the
-- other sources' (any case), and the rest is decided in byte order, whatever the collation.
with

known_ids as (
    select
        user_id,
        0 as source_rank
    from {{ ref('stg_seedtest__exam_results') }}
    union
    select
        user_id,
        0 as source_rank
    from {{ ref('stg_seedtest__weekly_kpi') }}
    union
    select
        user_id,
        0 as source_rank
    from {{ ref('stg_seedtest__sessions') }}
    union
    select
        user_id,
        1 as source_rank
    from {{ ref('stg_seedtest__interest_goals') }}
    union
    select
        user_id,
        1 as source_rank
    from {{ ref('stg_seedtest__ability_estimates') }}
    union
    select
        user_id,
        1 as source_rank
    from {{ ref('stg_seedtest__student_topic_theta') }}
),

shaped as (
    select
        source_rank,
        user_id as app_user_id,
        {{ uuid_form('user_id') }} as user_uuid,
        {{ is_uuid_shaped('user_id') }} as is_uuid_shaped
    from known_ids
    where user_id is not null and user_id <> ''
)

select distinct on (user_uuid)
    user_uuid,
    app_user_id
from shaped
order by user_uuid asc, is_uuid_shaped asc, source_rank asc, app_user_id collate "C" asc
