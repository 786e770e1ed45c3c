{#
    Incremental strategy `window_replace` (features_topic_daily, int_activity_daily): inside
    the model's one transaction, delete every row of the days this run recomputes (config
    `window_column`, default `date`), then insert the new rows.
    Unlike a key merge, rows whose source attempts were deleted or corrected disappear, and
    days outside the window are never touched (SPEC 3.4).
#}
{% macro get_incremental_window_replace_sql(arg_dict) -%}
    {%- set target_relation = arg_dict['target_relation'] -%}
    {%- set temp_relation = arg_dict['temp_relation'] -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    {%- set window_column = config.get('window_column', 'date') -%}
    {%- set window_start = incremental_window_start(
        target_relation.identifier, config.get('catch_up_column')
    ) -%}
    {%- set window_column = adapter.quote(window_column) -%}
    delete from {{ target_relation }}
    where
        {{ window_column }} <= {{ date_literal(anchor_date()) }}
        and {{ on_or_after(window_column, window_start) }};

    insert into {{ target_relation }} ({{ columns }})
    select {{ columns }}
    from {{ temp_relation }}
{%- endmacro %}
