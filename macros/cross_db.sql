{#
    The SQL that differs between the engines this project runs on, behind adapter.dispatch:
    default__ is PostgreSQL (the reference engine; its text is what the models compiled to
    before the Spark port, so the PostgreSQL plans are unchanged), spark__ is Spark SQL
    (dbt-spark, Spark 3.4 or later). Models and macros call the un-prefixed name.

    Casts are written `cast(x as {{ sql_type('text') }})`: dbt's own type macros do not fit,
    since on Spark dbt.type_string() renders TEXT (not a Spark type) and dbt.type_float()
    FLOAT (4 bytes there), and PostgreSQL's timestamptz has no dbt.type_* at all.
#}

{# --- types ------------------------------------------------------------------------ #}

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

{# --- calendar days in activity_timezone (see time_windows.sql) ----------------------------- #}

{#
    On Spark, from_utc_timestamp/to_utc_timestamp read and write the wall clock of a timestamp
    in the session time zone, so they are right only with spark.sql.session.timeZone = UTC:
    the profile sets it, and pin_session_time_zone() (on-run-start) sets it again.
#}
{% macro default__local_midnight(date_sql, timezone) -%}
    (cast({{ date_sql }} as timestamp) at time zone '{{ timezone }}')
{%- endmacro %}

{% macro spark__local_midnight(date_sql, timezone) -%}
    to_utc_timestamp(cast({{ date_sql }} as timestamp), '{{ timezone }}')
{%- endmacro %}

{% macro default__local_date(timestamptz_sql, timezone) -%}
    cast(({{ timestamptz_sql }}) at time zone '{{ timezone }}' as date)
{%- endmacro %}

{% macro spark__local_date(timestamptz_sql, timezone) -%}
    to_date(from_utc_timestamp(({{ timestamptz_sql }}), '{{ timezone }}'))
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

{# md5 of a text as uuid text (lowercase 8-4-4-4-12): PostgreSQL's cast(cast(md5(x) as uuid) as text). #}
{% macro md5_uuid(text_sql) -%}
    {{- adapter.dispatch('md5_uuid', 'seedtest_analytics')(text_sql) -}}
{%- endmacro %}

{% macro default__md5_uuid(text_sql) -%}
    cast(cast(md5({{ text_sql }}) as uuid) as text)
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
    round(cast({{ double_sql }} as numeric))
{%- endmacro %}

{% macro spark__round_half_away(double_sql) -%}
    round({{ double_sql }})
{%- endmacro %}

{#
    numerator / denominator, for a whole-number numerator and a numeric denominator such as
    `(n - 1.0)`: PostgreSQL divides exactly (numeric), Spark in double precision (its decimal
    division keeps fewer digits than PostgreSQL's).
#}
{% macro ratio(numerator_sql, denominator_sql) -%}
    {{- adapter.dispatch('ratio', 'seedtest_analytics')(numerator_sql, denominator_sql) -}}
{%- endmacro %}

{% macro default__ratio(numerator_sql, denominator_sql) -%}
    ({{ numerator_sql }}) / {{ denominator_sql }}
{%- endmacro %}

{% macro spark__ratio(numerator_sql, denominator_sql) -%}
    cast({{ numerator_sql }} as double) / {{ denominator_sql }}
{%- endmacro %}

{# Whole-number division truncated toward zero (PostgreSQL's integer / integer). #}
{% macro int_div(numerator_sql, denominator_sql) -%}
    {{- adapter.dispatch('int_div', 'seedtest_analytics')(numerator_sql, denominator_sql) -}}
{%- endmacro %}

{% macro default__int_div(numerator_sql, denominator_sql) -%}
    ({{ numerator_sql }}) / {{ denominator_sql }}
{%- endmacro %}

{% macro spark__int_div(numerator_sql, denominator_sql) -%}
    cast(({{ numerator_sql }}) div {{ denominator_sql }} as int)
{%- endmacro %}

{#
    Joins each row of the preceding `from` item to the whole numbers lo..hi (none when
    lo > hi), as column `alias`: PostgreSQL's `cross join lateral generate_series(lo, hi)`.
    Goes right after the `from` item, before `where`.
#}
{% macro join_series(lo_sql, hi_sql, alias) -%}
    {{- adapter.dispatch('join_series', 'seedtest_analytics')(lo_sql, hi_sql, alias) -}}
{%- endmacro %}

{% macro default__join_series(lo_sql, hi_sql, alias) -%}
    cross join
        lateral generate_series(
            {{ lo_sql }},
            {{ hi_sql }}
        ) as {{ alias }}
{%- endmacro %}

{# Spark's sequence(lo, hi) counts down when lo > hi: those rows get an empty array. #}
{% macro spark__join_series(lo_sql, hi_sql, alias) -%}
    lateral view explode(
        if({{ lo_sql }} <= {{ hi_sql }}, sequence({{ lo_sql }}, {{ hi_sql }}), array())
    ) {{ alias }}_series as {{ alias }}
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

{# --- de-duplication ------------------------------------------------------------------- #}

{#
    One row per `key` from the relation or CTE `from`: the first in `order_by` (a list of
    SQL order items), with `columns`. PostgreSQL's DISTINCT ON keeps it in one pass over the
    sorted rows (a row_number() window and a filter cost 12% more of the window's attempt
    table at 10M attempts); Spark has no DISTINCT ON.
#}
{% macro first_per_key(from, key, columns, order_by) -%}
    {{- return(adapter.dispatch('first_per_key', 'seedtest_analytics')(from, key, columns, order_by)) -}}
{%- endmacro %}

{% macro default__first_per_key(from, key, columns, order_by) -%}
    select distinct on ({{ key }})
        {{ columns | join(',\n        ') }}
    from {{ from }}
    order by
        {{ key }},
        {{ order_by | join(',\n        ') }}
{%- endmacro %}

{% macro spark__first_per_key(from, key, columns, order_by) -%}
    select
        {{ columns | join(',\n        ') }}
    from (
        select
            {{ columns | join(',\n            ') }},
            row_number() over (
                partition by {{ key }}
                order by {{ order_by | join(', ') }}
            ) as copy_rank
        from {{ from }}
    ) as ranked
    where ranked.copy_rank = 1
{%- endmacro %}
