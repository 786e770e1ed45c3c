{#
    `where column >= from_sql` (or the column is null, when `nullable`), or nothing when
    `from_sql` is none: every row (int_user_ids' first build).
#}
{% macro where_since(column, from_sql, nullable=false) -%}
    {%- if from_sql is not none -%}
        where {{ column }} >= {{ from_sql }}{% if nullable %} or {{ column }} is null{% endif %}
    {%- endif -%}
{%- endmacro %}
