-- Every mirt_ability fit with the application's user id (its ids are in uuid form),
-- mapped once for this source. Empty when the table is missing.
select
    {{ app_user_id('mirt.user_id') }} as user_id,
    mirt.user_id as source_user_id,
    mirt.theta,
    mirt.theta_se,
    mirt.fitted_at,
    mirt.model_version
from {{ ref('stg_seedtest__mirt_abilities') }} as mirt
{{ join_user_ids('mirt.user_id') }}
