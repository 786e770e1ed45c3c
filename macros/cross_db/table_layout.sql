{#
    Model configuration that only one engine has (not dispatched: a config value, or none).
#}

{# `indexes` for PostgreSQL only (other adapters have no such config). #}
{% macro pg_indexes(indexes) -%}
    {{- return(indexes if target.type == 'postgres' else none) -}}
{%- endmacro %}

{#
    Spark table layout of a day-keyed incremental model: partitioned by its day column, so the
    window_replace strategy replaces whole day partitions. None on other engines.
#}
{% macro day_partitions(day_column) -%}
    {{- return([day_column] if target.type == 'spark' else none) -}}
{%- endmacro %}
