-- Every user's ability (mean, sd) as of the end of anchor_date: the latest ability_estimates
-- row fitted by then, else the latest mirt_ability fit (theta, se). The P step's input, and
-- the population behind its empirical-Bayes prior (all users, not only inactive ones).
with

estimates_ranked as (
    select
        user_id,
        ability_mean,
        ability_sd,
        fitted_at,
        row_number() over (partition by user_id order by fitted_at desc) as fit_rank
    from {{ ref('int_ability_estimates__mapped') }}
    where
        fitted_at < {{ anchor_end_ts() }}
        -- NaN or infinite values: the row is skipped (counted by the source check is_finite)
        and {{ is_finite_number('ability_mean') }}
        and coalesce({{ is_finite_number('ability_sd') }}, true)
),

estimates as (
    select
        user_id,
        ability_mean,
        ability_sd,
        fitted_at
    from estimates_ranked
    where fit_rank = 1
),

mirt_ranked as (
    select
        user_id,
        theta as ability_mean,
        theta_se as ability_sd,
        fitted_at,
        row_number() over (partition by user_id order by fitted_at desc) as fit_rank
    from {{ ref('int_mirt_abilities__mapped') }}
    where
        fitted_at < {{ anchor_end_ts() }}
        and {{ is_finite_number('theta') }}
        and coalesce({{ is_finite_number('theta_se') }}, true)
),

mirt as (
    select
        user_id,
        ability_mean,
        ability_sd,
        fitted_at
    from mirt_ranked
    where fit_rank = 1
)

select
    user_id,
    ability_mean,
    ability_sd,
    fitted_at,
    'ability_estimates' as ability_source
from estimates

union all

select
    mirt.user_id,
    mirt.ability_mean,
    mirt.ability_sd,
    mirt.fitted_at,
    'mirt_ability' as ability_source
from mirt
where not exists (
    select 1 from estimates
    where estimates.user_id = mirt.user_id
)
