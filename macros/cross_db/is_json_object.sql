{#
    True when a JSON value is an object. On PostgreSQL the column is jsonb; a Spark copy of the
    table holds the JSON text (jsonb's text form: no leading white space).
#}
{% macro is_json_object(json_sql) -%}
    {{- adapter.dispatch('is_json_object', 'seedtest_analytics')(json_sql) -}}
{%- endmacro %}

{% macro default__is_json_object(json_sql) -%}
    jsonb_typeof({{ json_sql }}) = 'object'
{%- endmacro %}

{% macro spark__is_json_object(json_sql) -%}
    (substr(ltrim({{ json_sql }}), 1, 1) = '{')
{%- endmacro %}
