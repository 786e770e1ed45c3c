{#
    With the include_theta var off (the default), fails on every row whose `column_name` is
    not null. With include_theta on, the column may hold a value and nothing is checked.
    With `written_at_column` (e.g. computed_at), only the rows of the latest write are checked
    (those holding the column's maximum): days written by earlier runs keep the setting those
    runs had.
#}
{% test null_unless_include_theta(model, column_name, written_at_column=none) %}

select *
from {{ model }}
where
    {{ column_name }} is not null
    {%- if written_at_column is not none %}
        and {{ written_at_column }} = (select max({{ written_at_column }}) from {{ model }})
    {%- endif %}
    {%- if include_theta() %}
        and false
    {%- endif %}

{% endtest %}
