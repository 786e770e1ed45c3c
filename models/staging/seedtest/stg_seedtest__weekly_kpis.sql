-- Weekly KPI rows as the application keeps them (the P/S step writes P and S into kpis).
select
    user_id,
    week_start,
    kpis,
    {{ is_json_object('kpis') }} as is_kpis_object,
    created_at,
    updated_at
from {{ source('seedtest', 'weekly_kpi') }}
