{#
    Fails on every row of the model for which `expression` (a SQL boolean expression over its
    columns) is not true. A null result counts as a failure unless the expression handles it.
    Used at model level, or at column level where `column_name` is only documentation.
#}
{% test expression_is_true(model, expression, column_name=none) %}

select *
from {{ model }}
where not coalesce(({{ expression }}), false)

{% endtest %}
