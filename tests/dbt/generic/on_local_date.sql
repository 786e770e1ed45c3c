{#
    Fails on every row whose timestamptz `column_name` does not fall on the calendar day in
    `date_column`, days taken in the activity_timezone var (never the session time zone).
    Rows with a null timestamp pass (pair with not_null where it is required).
#}
{% test on_local_date(model, column_name, date_column) %}

select *
from {{ model }}
where
    {{ column_name }} is not null
    and {{ local_date(column_name) }} is distinct from {{ date_column }}

{% endtest %}
