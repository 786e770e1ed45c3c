{#
    SQL types by their PostgreSQL names: `cast(x as {{ sql_type('text') }})` is
    `cast(x as text)` on PostgreSQL. dbt's own type macros do not fit: on Spark
    dbt.type_string() renders TEXT (not a Spark type) and dbt.type_float() FLOAT (4 bytes
    there), and PostgreSQL's timestamptz has no dbt.type_* at all.
#}

{# The engine's name for a PostgreSQL type name (text, integer, double precision, ...). #}
{% macro sql_type(pg_type) -%}
    {{- return(adapter.dispatch('sql_type', 'seedtest_analytics')(pg_type)) -}}
{%- endmacro %}

{% macro default__sql_type(pg_type) -%}
    {{- return(pg_type) -}}
{%- endmacro %}

{% macro spark__sql_type(pg_type) -%}
    {%- set spark_types = {
        'text': 'string',
        'varchar': 'string',
        'uuid': 'string',
        'jsonb': 'string',
        'json': 'string',
        'integer': 'int',
        'int': 'int',
        'int4': 'int',
        'smallint': 'smallint',
        'bigint': 'bigint',
        'int8': 'bigint',
        'double precision': 'double',
        'float8': 'double',
        'real': 'float',
        'numeric': 'decimal(38, 18)',
        'boolean': 'boolean',
        'bool': 'boolean',
        'date': 'date',
        'timestamptz': 'timestamp',
        'timestamp with time zone': 'timestamp',
        'timestamp': 'timestamp_ntz',
    } -%}
    {%- set key = pg_type | lower | trim -%}
    {%- if key not in spark_types -%}
        {{- exceptions.raise_compiler_error('sql_type: no Spark type for ' ~ pg_type) -}}
    {%- endif -%}
    {{- return(spark_types[key]) -}}
{%- endmacro %}
