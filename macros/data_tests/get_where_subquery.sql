{#
    Overrides dbt's get_where_subquery, which applies a data test's `where` config, so that a
    test can be scoped to what this run wrote or reads without putting a var's text into
    SQL: the `where` text of a test holds placeholders, filled here from the validated vars
    (anchor_date(), lookback_days(), include_theta(), ...), never from raw var text.

        __anchor_date__         date literal of the anchor date
        __window_start__        date literal of anchor_date - lookback_days (the run's window)
        __window_start_ts__     local midnight (activity_timezone) starting __window_start__
        __anchor_end_ts__       local midnight ending the anchor day
        __anchor_week_start__   date literal of the anchor's ISO Monday (weekly_kpi.week_start)
        __include_theta__       true or false, the include_theta var

    A `where` without placeholders works as in dbt.
#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if not where -%}
        {{- return(relation) -}}
    {%- endif -%}
    {%- set anchor = anchor_date() -%}
    {%- set window_start = anchor - modules.datetime.timedelta(days=lookback_days()) -%}
    {%- set where = where
        | replace('__anchor_date__', date_literal(anchor) | trim)
        | replace('__window_start_ts__', local_midnight(date_literal(window_start)) | trim)
        | replace('__window_start__', date_literal(window_start) | trim)
        | replace('__anchor_end_ts__', anchor_end_ts() | trim)
        | replace('__anchor_week_start__', anchor_week_start() | trim)
        | replace('__include_theta__', 'true' if include_theta() else 'false') -%}
    {%- set filtered -%}
        (select * from {{ relation }} where {{ where }}) dbt_subquery
    {%- endset -%}
    {{- return(filtered) -}}
{%- endmacro %}
