{#
    The SQL that differs between the engines this project runs on, behind adapter.dispatch:
    default__ is PostgreSQL (the reference engine; its text is what the models compiled to
    before the Spark port, so the PostgreSQL plans are unchanged), spark__ is Spark SQL
    (dbt-spark, Spark 3.4 or later). Models and macros call the un-prefixed name.

    dbt's own type macros are not used for casts: on Spark dbt.type_string() renders TEXT
    (not a Spark type) and dbt.type_float() renders FLOAT (4-byte there), and PostgreSQL's
    timestamptz has no dbt.type_* at all.
#}

{# --- types and casts ------------------------------------------------------------------------ #}

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

{#
    `expr` cast to the PostgreSQL type `pg_type` (or the engine's equivalent). On PostgreSQL
    this is `expr::pg_type`, which binds tighter than any operator: pass a column, a function
    call or a parenthesised expression.
#}
{% macro cast_as(expr, pg_type) -%}
    {{- adapter.dispatch('cast_as', 'seedtest_analytics')(expr, pg_type) -}}
{%- endmacro %}

{% macro default__cast_as(expr, pg_type) -%}
    {{ expr }}::{{ pg_type }}
{%- endmacro %}

{% macro spark__cast_as(expr, pg_type) -%}
    cast({{ expr }} as {{ sql_type(pg_type) }})
{%- endmacro %}

{# --- calendar days in activity_timezone (see time_windows.sql) ----------------------------- #}

{#
    On Spark, from_utc_timestamp/to_utc_timestamp read and write the wall clock of a timestamp
    in the session time zone, so they are right only with spark.sql.session.timeZone = UTC:
    the profile sets it, and pin_session_time_zone() (on-run-start) sets it again.
#}
{% macro default__local_midnight(date_sql, timezone) -%}
    (({{ date_sql }})::timestamp at time zone '{{ timezone }}')
{%- endmacro %}

{% macro spark__local_midnight(date_sql, timezone) -%}
    to_utc_timestamp(cast(({{ date_sql }}) as timestamp), '{{ timezone }}')
{%- endmacro %}

{% macro default__local_date(timestamptz_sql, timezone) -%}
    (({{ timestamptz_sql }}) at time zone '{{ timezone }}')::date
{%- endmacro %}

{% macro spark__local_date(timestamptz_sql, timezone) -%}
    to_date(from_utc_timestamp(({{ timestamptz_sql }}), '{{ timezone }}'))
{%- endmacro %}

{# ISO day of the week of a date: 1 = Monday ... 7 = Sunday. #}
{% macro iso_day_of_week(date_sql) -%}
    {{- adapter.dispatch('iso_day_of_week', 'seedtest_analytics')(date_sql) -}}
{%- endmacro %}

{% macro default__iso_day_of_week(date_sql) -%}
    extract(isodow from {{ date_sql }})
{%- endmacro %}

{% macro spark__iso_day_of_week(date_sql) -%}
    extract(dayofweek_iso from {{ date_sql }})
{%- endmacro %}

{# Whole days from `start_date_sql` to `end_date_sql` (dates), PostgreSQL's date - date. #}
{% macro days_between(start_date_sql, end_date_sql) -%}
    {{- adapter.dispatch('days_between', 'seedtest_analytics')(start_date_sql, end_date_sql) -}}
{%- endmacro %}

{% macro default__days_between(start_date_sql, end_date_sql) -%}
    {{ end_date_sql }} - {{ start_date_sql }}
{%- endmacro %}

{% macro spark__days_between(start_date_sql, end_date_sql) -%}
    datediff({{ end_date_sql }}, {{ start_date_sql }})
{%- endmacro %}

{#
    An integer day number of a date (days since 1970-01-01), for window frames over days:
    `order by day_number(d) range between 13 preceding and current row` is the same frame on
    every engine (interval offsets in RANGE frames are not portable).
#}
{% macro day_number(date_sql) -%}
    {{- adapter.dispatch('day_number', 'seedtest_analytics')(date_sql) -}}
{%- endmacro %}

{% macro default__day_number(date_sql) -%}
    ({{ date_sql }} - date '1970-01-01')
{%- endmacro %}

{% macro spark__day_number(date_sql) -%}
    unix_date({{ date_sql }})
{%- endmacro %}

{#
    Re-asserts the session time zone the Spark macros rely on (UTC); an on-run-start hook.
    Nothing on PostgreSQL, whose day arithmetic never depends on the session time zone.
#}
{% macro pin_session_time_zone() -%}
    {{- adapter.dispatch('pin_session_time_zone', 'seedtest_analytics')() -}}
{%- endmacro %}

{% macro default__pin_session_time_zone() -%}
    select 1
{%- endmacro %}

{% macro spark__pin_session_time_zone() -%}
    set spark.sql.session.timeZone = UTC
{%- endmacro %}

{# --- the application's user-id rule (see user_ids.sql) -------------------------------------- #}

{# Java's `$` also matches before a final line break: the length check makes it PostgreSQL's. #}
{% macro default__is_uuid_shaped(text_sql) -%}
    ({{ text_sql }} ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')
{%- endmacro %}

{% macro spark__is_uuid_shaped(text_sql) -%}
    (
        length({{ text_sql }}) = 36
        and {{ text_sql }} rlike '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
    )
{%- endmacro %}

{#
    True when a text matches a regular expression (case-sensitive; PostgreSQL `~`, Spark
    `rlike`, whose `$` also matches before a final line break). For data tests.
#}
{% macro regex_match(text_sql, pattern) -%}
    {{- adapter.dispatch('regex_match', 'seedtest_analytics')(text_sql, pattern) -}}
{%- endmacro %}

{% macro default__regex_match(text_sql, pattern) -%}
    ({{ text_sql }} ~ '{{ pattern }}')
{%- endmacro %}

{% macro spark__regex_match(text_sql, pattern) -%}
    ({{ text_sql }} rlike '{{ pattern }}')
{%- endmacro %}

{# md5 of a text, as uuid text (lowercase 8-4-4-4-12), as PostgreSQL's md5(x)::uuid::text. #}
{% macro md5_uuid(text_sql) -%}
    {{- adapter.dispatch('md5_uuid', 'seedtest_analytics')(text_sql) -}}
{%- endmacro %}

{% macro default__md5_uuid(text_sql) -%}
    md5({{ text_sql }})::uuid::text
{%- endmacro %}

{% macro spark__md5_uuid(text_sql) -%}
    regexp_replace(md5({{ text_sql }}), '^(.{8})(.{4})(.{4})(.{4})(.{12})$', '$1-$2-$3-$4-$5')
{%- endmacro %}

{# --- ordering ------------------------------------------------------------------------------ #}

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

{#
    The 1-based position of `expr` in the list of text `values`, null when it is not there
    (PostgreSQL's array_position over an array literal); for ordering by a fixed preference.
#}
{% macro position_in_list(expr, values) -%}
    {{- adapter.dispatch('position_in_list', 'seedtest_analytics')(expr, values) -}}
{%- endmacro %}

{% macro default__position_in_list(expr, values) -%}
    array_position(
        array[{%- for value in values %}'{{ value }}'{{ ", " if not loop.last }}{% endfor -%}],
        {{ expr }}
    )
{%- endmacro %}

{% macro spark__position_in_list(expr, values) -%}
    case {{ expr }}
        {%- for value in values %}
        when '{{ value }}' then {{ loop.index }}
        {%- endfor %}
    end
{%- endmacro %}

{#
    One ORDER BY item with PostgreSQL's null placement made explicit (nulls last when
    ascending, first when descending; Spark's default is the opposite). Items that already
    say `nulls first/last` are kept.
#}
{% macro _pg_null_order(item) -%}
    {%- set text = item | trim -%}
    {%- set lowered = text | lower -%}
    {%- if ' nulls ' in lowered ~ ' ' -%}
        {{- return(text) -}}
    {%- elif lowered.endswith(' desc') -%}
        {{- return(text ~ ' nulls first') -}}
    {%- else -%}
        {{- return(text ~ ' nulls last') -}}
    {%- endif -%}
{%- endmacro %}

{#
    The first row of each group, PostgreSQL's `select distinct on (...)`:
      partition_by  list of SQL expressions (the group)
      order_by      list of ORDER BY items deciding the first row within a group
      columns       dict: output column name -> SQL expression (in output order)
      from_sql      the rest of the query, `from ... join ... where ...` (no order by); or,
                    called as `{% call distinct_on(...) %} from ... {% endcall %}`, the body
    On PostgreSQL this is the `distinct on` query itself (a sort and a scan); elsewhere a
    row_number() in a subquery, with PostgreSQL's null ordering kept.
#}
{% macro distinct_on(partition_by, order_by, columns, from_sql=none) -%}
    {%- set body = from_sql if from_sql is not none else caller() -%}
    {{- adapter.dispatch('distinct_on', 'seedtest_analytics')(
        partition_by, order_by, columns, body
    ) -}}
{%- endmacro %}

{% macro _select_list(columns) -%}
    {%- for name, expr in columns.items() %}
        {% set bare = expr | trim -%}
        {% if bare == name or bare.endswith('.' ~ name) -%}
            {{ bare }}
        {%- else -%}
            {{ bare }} as {{ name }}
        {%- endif %}{{ "," if not loop.last }}
    {%- endfor %}
{%- endmacro %}

{% macro default__distinct_on(partition_by, order_by, columns, from_sql) -%}
    select distinct on ({{ partition_by | join(', ') }})
    {{- _select_list(columns) }}
    {{ from_sql | trim }}
    order by
        {%- for key in partition_by %}
        {{ key }} asc,
        {%- endfor %}
        {{ order_by | join(',\n        ') }}
{%- endmacro %}

{% macro spark__distinct_on(partition_by, order_by, columns, from_sql) -%}
    select
        {%- for name in columns.keys() %}
        {{ name }}{{ "," if not loop.last }}
        {%- endfor %}
    from (
        select
            {{- _select_list(columns) | indent(4) }},
            row_number() over (
                partition by {{ partition_by | join(', ') }}
                order by
                {%- for item in order_by %}
                    {{ _pg_null_order(item) }}{{ "," if not loop.last }}
                {%- endfor %}
            ) as seedtest_row_number
        {{ from_sql | trim }}
    ) as first_rows
    where seedtest_row_number = 1
{%- endmacro %}

{# --- aggregates and numbers ---------------------------------------------------------------- #}

{#
    A double rounded to a whole number half away from zero, as PostgreSQL rounds numeric
    (PostgreSQL's round(double precision) rounds half to even; Spark's round() on a double
    already rounds half up, away from zero).
#}
{% macro round_half_away(double_sql) -%}
    {{- adapter.dispatch('round_half_away', 'seedtest_analytics')(double_sql) -}}
{%- endmacro %}

{% macro default__round_half_away(double_sql) -%}
    round(({{ double_sql }})::numeric)
{%- endmacro %}

{% macro spark__round_half_away(double_sql) -%}
    round({{ double_sql }})
{%- endmacro %}

{# --- JSON ---------------------------------------------------------------------------------- #}

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

{# --- model configuration ------------------------------------------------------------------- #}

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
