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

{#
    The incremental strategy `window_replace` on Spark (dbt-spark), the counterpart of
    get_incremental_window_replace_sql (PostgreSQL, above): every day
    of the run's window [incremental_window_start(), anchor_date] ends up holding exactly the
    freshly computed rows, including a day that no longer has any row (its source attempts were
    deleted or corrected), and days outside the window are never touched.

    Tables are partitioned by the day column (model config partition_by, see day_partitions()).
    On parquet (the default file format) the run
      1. writes the new rows once into a staging table <model>__dbt_window (so the model's
         query runs once and every step below reads the same rows),
      2. drops the window's day partitions that get no new row (`alter table ... drop
         partition`: dynamic partition overwrite only replaces the partitions it writes, so
         such a day would otherwise keep its old rows),
      3. replaces the partitions of the days that have new rows with one
         `insert overwrite ... partition (day)` in dynamic partition-overwrite mode,
      4. drops the staging table.
    What a reader may see while this runs: parquet has no transactions, so each step is
    visible as soon as it is done. Between steps 2 and 3 the days that lost all their rows are
    already gone while the other window days still hold their old rows; during step 3 each day
    is swapped on its own (Spark deletes the old partition directory, then moves the new one
    in), so a query can see some window days new and others old, and a day missing for the
    moment of its swap (or fail on a file that was just replaced). Days outside the window are
    stable throughout. A crash leaves the window part old, part new (never duplicated rows);
    the next run recomputes the whole window. Readers that need an all-or-nothing switch use
    Delta (`insert into ... replace where`, one commit) or Iceberg (see below); nightly
    consumers simply run after the build.

    With file_format delta the steps 2-3 are one atomic `insert into ... replace where` over
    the window; with iceberg a `delete` of the window then an `insert` (two snapshots). These two
    branches are not exercised by tests/spark (their jars are not available offline).
#}

{# dbt-spark's incremental materialization only knows its own strategies: add ours. #}
{% macro dbt_spark_validate_get_incremental_strategy(raw_strategy, file_format) -%}
    {%- if raw_strategy == 'window_replace' -%}
        {%- if not config.get('partition_by') -%}
            {{- exceptions.raise_compiler_error(
                "incremental_strategy 'window_replace' on Spark needs partition_by (the day column)"
            ) -}}
        {%- endif -%}
        {{- return(raw_strategy) -}}
    {%- endif -%}
    {{- return(dbt.dbt_spark_validate_get_incremental_strategy(raw_strategy, file_format)) -}}
{%- endmacro %}

{% macro dbt_spark_get_incremental_sql(
    strategy, source, target, existing, unique_key, incremental_predicates
) -%}
    {%- if strategy == 'window_replace' -%}
        {{- spark__get_incremental_window_replace_sql(source, target) -}}
    {%- else -%}
        {{- dbt.dbt_spark_get_incremental_sql(
            strategy, source, target, existing, unique_key, incremental_predicates
        ) -}}
    {%- endif -%}
{%- endmacro %}

{#
    Runs steps 1-3 (described above) while it is rendered and returns step 4, which the
    materialization runs as its main statement.
#}
{% macro spark__get_incremental_window_replace_sql(source, target) -%}
    {%- set window_column = config.get('window_column', 'date') -%}
    {%- set partition_by = config.get('partition_by') -%}
    {%- set partition_by = [partition_by] if partition_by is string else partition_by -%}
    {%- if partition_by | map('lower') | list != [window_column | lower] -%}
        {{- exceptions.raise_compiler_error(
            "window_replace on Spark: partition_by must be the window column " ~ window_column
        ) -}}
    {%- endif -%}
    {%- set file_format = config.get('file_format') or 'parquet' -%}
    {%- set window_start = incremental_window_start(
        target.identifier, config.get('catch_up_column')
    ) -%}
    {%- set anchor = anchor_date() -%}
    {%- set day = adapter.quote(window_column) -%}
    {%- set in_run_window -%}
        {{ day }} <= {{ date_literal(anchor) }} and {{ on_or_after(day, window_start) }}
    {%- endset -%}
    {%- set columns = adapter.get_columns_in_relation(target) | map(attribute='quoted') | join(', ') -%}
    {%- set staging = target.incorporate(path={'identifier': target.identifier ~ '__dbt_window'}) -%}

    {#- 1. the new rows, computed once -#}
    {%- do run_query('drop table if exists ' ~ staging) -%}
    {%- do run_query(
        'create table ' ~ staging ~ ' using parquet as select ' ~ columns ~ ' from ' ~ source
    ) -%}
    {%- set outside = run_query(
        'select count(*) from ' ~ staging ~ ' where not (' ~ in_run_window ~ ')'
    ).columns[0].values()[0] -%}
    {%- if outside > 0 -%}
        {%- do run_query('drop table if exists ' ~ staging) -%}
        {{- exceptions.raise_compiler_error(
            "window_replace: " ~ outside ~ " new rows of " ~ target
            ~ " fall outside the run's window; nothing was replaced"
        ) -}}
    {%- endif -%}

    {%- if file_format == 'delta' -%}
        {%- do run_query(
            'insert into ' ~ target ~ ' replace where ' ~ in_run_window
            ~ ' select ' ~ columns ~ ' from ' ~ staging
        ) -%}
    {%- elif file_format == 'iceberg' -%}
        {%- do run_query('delete from ' ~ target ~ ' where ' ~ in_run_window) -%}
        {%- do run_query('insert into ' ~ target ~ ' select ' ~ columns ~ ' from ' ~ staging) -%}
    {%- else -%}
        {%- set new_days = [] -%}
        {%- for row in run_query(
            'select distinct cast(' ~ day ~ ' as string) from ' ~ staging
        ) -%}
            {%- do new_days.append(row[0]) -%}
        {%- endfor -%}
        {#- 2. the window's days that get no new row -#}
        {%- set gone_days = [] -%}
        {%- for row in run_query('show partitions ' ~ target) -%}
            {%- set value = row[0].split('=', 1)[1] -%}
            {%- set partition_day = validated_date('partition of ' ~ target, value) -%}
            {%- if partition_day <= anchor
                and (window_start is none or partition_day >= window_start)
                and value not in new_days -%}
                {%- do gone_days.append(value) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- if gone_days -%}
            {%- set specs = [] -%}
            {%- for value in gone_days -%}
                {%- do specs.append('partition (' ~ day ~ " = '" ~ value ~ "')") -%}
            {%- endfor -%}
            {%- do run_query(
                'alter table ' ~ target ~ ' drop if exists ' ~ specs | join(', ')
            ) -%}
        {%- endif -%}
        {#- 3. the days with new rows, replaced partition by partition -#}
        {%- if new_days -%}
            {%- do run_query('set spark.sql.sources.partitionOverwriteMode = dynamic') -%}
            {%- do run_query(
                'insert overwrite table ' ~ target ~ ' partition (' ~ day ~ ') select '
                ~ columns ~ ' from ' ~ staging
            ) -%}
        {%- endif -%}
        {{- log(
            'window_replace ' ~ target ~ ': ' ~ new_days | length ~ ' day partitions written, '
            ~ gone_days | length ~ ' emptied days dropped'
        ) -}}
    {%- endif -%}

    {#- 4. (the main statement) -#}
    drop table if exists {{ staging }}
{%- endmacro %}
