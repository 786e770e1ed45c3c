-- Every ability_estimates row with the application's user id (the user-id rule), mapped once for
-- this source. Empty when the table is missing.
select
    {{ app_user_id('estimates.user_id') }} as user_id,
    estimates.user_id as source_user_id,
    estimates.ability_mean,
    estimates.ability_sd,
    estimates.fitted_at
from {{ ref('stg_seedtest__ability_estimates') }} as estimates
{{ join_user_ids('estimates.user_id') }}
