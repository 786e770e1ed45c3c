-- Every user's ability (mean, sd) as of the end of anchor_date: the latest ability_estimates
-- row fitted by then, else the latest mirt_ability fit (theta, se). The P step's input, and
-- the population behind its empirical-Bayes prior (all users, not only inactive ones).
with

estimates as (
    select distinct on ({{ app_user_id('estimates.user_id') }})
        {{ app_user_id('estimates.user_id') }} as user_id,
        estimates.ability_mean,
        estimates.ability_sd,
        estimates.fitted_at
    from {{ ref('stg_seedtest__ability_estimates') }} as estimates
    {{ join_user_ids('estimates.user_id') }}
    where
        estimates.fitted_at < {{ anchor_end_ts() }}
        and estimates.ability_mean is not null
    order by {{ app_user_id('estimates.user_id') }} asc, estimates.fitted_at desc
),

mirt as (
    select distinct on ({{ app_user_id('mirt.user_id') }})
        {{ app_user_id('mirt.user_id') }} as user_id,
        mirt.theta as ability_mean,
        mirt.theta_se as ability_sd,
        mirt.fitted_at
    from {{ ref('stg_seedtest__mirt_ability') }} as mirt
    {{ join_user_ids('mirt.user_id', 'user_ids') }}
    where
        mirt.fitted_at < {{ anchor_end_ts() }}
        and mirt.theta is not null
    order by {{ app_user_id('mirt.user_id') }} asc, mirt.fitted_at desc
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
