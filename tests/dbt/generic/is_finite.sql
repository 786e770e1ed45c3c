{#
    Fails on every row whose `column_name` is infinite or NaN (`timestamp`: the column is a
    timestamp); nulls pass. Such a row is skipped by the models (macros/finite_values.sql).
#}
{% test is_finite(model, column_name, timestamp=false) %}

select *
from {{ model }}
where {{ is_infinite_time(column_name) if timestamp else 'not ' ~ is_finite_number(column_name) }}

{% endtest %}
