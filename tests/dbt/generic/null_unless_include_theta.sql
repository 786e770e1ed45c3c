{#
    With the include_theta var off (the default), fails on every row whose `column_name` is
    not null. With include_theta on, the column may hold a value and nothing is checked.
    Scope it to the run's window with the `where` config: days written by earlier runs keep
    the setting those runs had.
#}
{% test null_unless_include_theta(model, column_name) %}

select *
from {{ model }}
where
    {{ column_name }} is not null
    {%- if include_theta() %}
        and false
    {%- endif %}

{% endtest %}
