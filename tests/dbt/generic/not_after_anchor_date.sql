{#
    Fails on every row whose date `column_name` is after the run's anchor_date var.
    With `written_at_column` (e.g. computed_at), only the rows of the latest write are checked
    (those holding the column's maximum): an incremental table keeps later days written by
    earlier runs when an older anchor is re-run, and those are not this run's output.
#}
{% test not_after_anchor_date(model, column_name, written_at_column=none) %}

select *
from {{ model }}
where
    {{ column_name }} > {{ date_literal(anchor_date()) }}
    {%- if written_at_column is not none %}
        and {{ written_at_column }} = (select max({{ written_at_column }}) from {{ model }})
    {%- endif %}

{% endtest %}
