{#
    `relation` when it is not none, else an empty relation of the given `columns` (name ->
    SQL type), for a `from` that reads a table which may not exist (yet) in this run. Give it
    an alias (`from {{ relation_or_empty(...) }} as x`): PostgreSQL 15 requires one for a
    subquery.
#}
{% macro relation_or_empty(relation, columns) -%}
    {%- if relation is not none -%}
        {{ relation }}
    {%- else -%}
        (select
        {%- for name, type in columns.items() %}
            cast(null as {{ sql_type(type) }}) as {{ name }}{{ "," if not loop.last }}
        {%- endfor %}
        where false)
    {%- endif -%}
{%- endmacro %}
