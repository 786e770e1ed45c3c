{# A text expression ordered by bytes (code points), whatever the database collation. #}
{% macro byte_order(text_sql) -%}
    {{- adapter.dispatch('byte_order', 'seedtest_analytics')(text_sql) -}}
{%- endmacro %}

{% macro default__byte_order(text_sql) -%}
    {{ text_sql }} collate "C"
{%- endmacro %}

{# Spark compares strings by their UTF-8 bytes (the default UTF8_BINARY collation). #}
{% macro spark__byte_order(text_sql) -%}
    {{ text_sql }}
{%- endmacro %}
