{#
    Incremental strategy `window_replace` (features_topic_daily, int_activity_daily): inside
    the model's one transaction, delete every row of the days this run recomputes (config
    `window_column`, default `date`, from incremental_window_start() to anchor_date), then
    insert the new rows. Days outside the window are never touched, and rows whose source
    attempts were deleted or corrected disappear.

    Why not one of dbt-postgres 1.11's built-in strategies:
    - merge (and the default append/merge on a unique key): a key merge only upserts the keys
      the run computes; a (user, topic, day) whose attempts were all deleted or moved at the
      source is not among them, so its old row would stay. The whole day has to go.
    - delete+insert: deletes by the unique keys of the new rows, so it has the same hole (a key
      that is no longer computed is never deleted); with incremental_predicates to widen the
      delete it becomes this strategy, spelled less clearly.
    - microbatch: batches are UTC days of the event_time column, while our days are calendar
      days in activity_timezone; and each batch filters its inputs to that batch, which drops
      the 27-day lead-in the improvement index needs, so every batch's improvement would be
      wrong. It also has no way to say "the window's days, whole".
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
