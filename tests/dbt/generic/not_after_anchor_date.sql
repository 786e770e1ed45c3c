{# Fails on every row whose date `column_name` is after the run's anchor_date var. #}
{% test not_after_anchor_date(model, column_name) %}

select *
from {{ model }}
where {{ column_name }} > {{ date_literal(anchor_date()) }}

{% endtest %}
