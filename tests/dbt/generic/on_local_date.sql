{#
    Fails on every row whose timestamptz `column_name` does not fall on the calendar day in
    `date_column`, days taken in the activity_timezone var (never the session time zone).
    Rows with a null timestamp pass (pair with not_null where it is required).
    With `written_at_column` (e.g. computed_at), only the rows of the latest write are checked
    (those holding the column's maximum).
#}
{% test on_local_date(model, column_name, date_column, written_at_column=none) %}

select *
from {{ model }}
where
    {{ column_name }} is not null
    and {{ local_date(column_name) }} is distinct from {{ date_column }}
    {%- if written_at_column is not none %}
        and {{ written_at_column }} = (select max({{ written_at_column }}) from {{ model }})
    {%- endif %}

{% endtest %}
