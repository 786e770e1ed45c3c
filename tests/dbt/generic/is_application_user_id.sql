{#
    Fails on every row whose user id `column_name` is still in the uuid form of a known
    application user id (int_user_ids) instead of that id itself: the same person must never
    appear under two ids. Ids that cannot be mapped pass. Nothing is checked when the
    map_user_ids var is off (ids already are application ids).
#}
{% test is_application_user_id(model, column_name) %}

with checked as (
    select cast({{ column_name }} as {{ sql_type('text') }}) as user_id
    from {{ model }}
)

select
    checked.user_id,
    user_ids.app_user_id as expected_user_id
from checked
inner join {{ ref('int_user_ids') }} as user_ids
    on lower(checked.user_id) = user_ids.user_uuid
where
    checked.user_id <> user_ids.app_user_id
    {%- if not map_user_ids() %}
        and false
    {%- endif %}

{% endtest %}
