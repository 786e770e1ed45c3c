{#
    Day arithmetic in activity_timezone, never in the database session's time zone: a
    calendar day d covers [local_midnight(d), local_midnight(d + 1)). The dispatchers pass
    the validated var activity_timezone() to the engine's variant.
#}

{# The timestamptz at which a local calendar day starts, for a date literal or expression. #}
{% macro local_midnight(date_sql) -%}
    {{- adapter.dispatch('local_midnight', 'seedtest_analytics')(date_sql, activity_timezone()) -}}
{%- endmacro %}

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

{# The local calendar day of a timestamptz expression. #}
{% macro local_date(timestamptz_sql) -%}
    {{- adapter.dispatch('local_date', 'seedtest_analytics')(timestamptz_sql, activity_timezone()) -}}
{%- endmacro %}

{% macro default__local_date(timestamptz_sql, timezone) -%}
    cast(({{ timestamptz_sql }}) at time zone '{{ timezone }}' as date)
{%- endmacro %}

{% macro spark__local_date(timestamptz_sql, timezone) -%}
    to_date(from_utc_timestamp(({{ timestamptz_sql }}), '{{ timezone }}'))
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
