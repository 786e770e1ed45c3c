{#
    Staging for a source table that may not exist in every database, or whose columns are
    named differently in some (e.g. updated_at / fitted_at). `columns` maps each output column
    to its type and the candidate source column names, first present wins. A missing table
    gives an empty relation of the same shape, so everything downstream still runs.
#}
{% macro optional_source(source_name, table_name, columns) -%}
    {%- set declared = source(source_name, table_name) -%}
    {%- set relation = load_relation(declared) if execute else none -%}
    {%- set present = [] -%}
    {%- if relation is not none -%}
        {%- for column in adapter.get_columns_in_relation(relation) -%}
            {%- do present.append(column.name | lower) -%}
        {%- endfor -%}
    {%- endif -%}
    select
    {%- for output_name, spec in columns.items() %}
        {%- set found = [] -%}
        {%- for candidate in spec.candidates if candidate in present -%}
            {%- do found.append(candidate) -%}
        {%- endfor %}
        {% if found -%}
            cast({{ adapter.quote(found[0]) }} as {{ sql_type(spec.type) }})
        {%- else -%}
            cast(null as {{ sql_type(spec.type) }})
        {%- endif %} as {{ output_name }}{{ "," if not loop.last }}
    {%- endfor %}
    {% if relation is not none -%}
    from {{ relation }}
    {%- else -%}
    -- {{ declared }} does not exist in this database: an empty relation of the same shape
    where false
    {%- endif %}
{%- endmacro %}

{# True at run time when the optional source table exists (false while parsing). #}
{% macro source_exists(source_name, table_name) -%}
    {%- if not execute -%}
        {{- return(false) -}}
    {%- endif -%}
    {{- return(load_relation(source(source_name, table_name)) is not none) -}}
{%- endmacro %}
