{#
    Fails on every row whose user id `column_name` is still in the uuid form of a known
    application user id (int_user_ids) instead of that id itself: the same person must never
    appear under two ids. Ids that cannot be mapped pass. Nothing is checked when the
    map_user_ids var is off (ids already are application ids).
#}
{% test is_application_user_id(model, column_name) %}

select
    checked.{{ column_name }} as user_id,
    user_ids.app_user_id as expected_user_id
from {{ model }} as checked
inner join {{ ref('int_user_ids') }} as user_ids
    on lower(checked.{{ column_name }}::text) = user_ids.user_uuid
where
    checked.{{ column_name }}::text <> user_ids.app_user_id
    {%- if not map_user_ids() %}
        and false
    {%- endif %}

{% endtest %}
