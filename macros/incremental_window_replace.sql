{#
    Incremental strategy `window_replace` for features_topic_daily: inside the model's one
    transaction, delete every row of the days this run recomputes, then insert the new rows.
    Unlike a key merge, rows whose source attempts were deleted or corrected disappear, and
    days outside the window are never touched (SPEC 3.4).
#}
{% macro get_incremental_window_replace_sql(arg_dict) -%}
    {%- set target_relation = arg_dict['target_relation'] -%}
    {%- set temp_relation = arg_dict['temp_relation'] -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    {%- set window_start = features_window_start() -%}
    delete from {{ target_relation }}
    where
        date <= {{ date_literal(anchor_date()) }}
        {%- if window_start is not none %}
        and date >= {{ date_literal(window_start) }}
        {%- endif %};

    insert into {{ target_relation }} ({{ columns }})
    select {{ columns }}
    from {{ temp_relation }}
{%- endmacro %}
