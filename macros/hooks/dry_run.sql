{#
    A dry run on PostgreSQL (`seedtest-analytics run --dry-run`, SEEDTEST_DRY_RUN=true, set by
    the CLI) builds in the project's own schema, under other names: every model's relation is
    `dry_run__<model>`, and the run-window registry is `dry_run__run_windows`. The job's role
    only needs to own that one schema (no CREATE on the database for a scratch schema).

    Every relation a dry run creates carries the comment dry_run_marker(), set in the same
    transaction as its build (persist_docs below); the CLI drops a `dry_run__` relation only
    when it carries that comment (seedtest_analytics/dry_run.py), and never with cascade.
    On Spark a dry run keeps its scratch database (the CLI does not set SEEDTEST_DRY_RUN there).
#}

{% macro dry_run_prefix() -%}
    {{- return('dry_run__') -}}
{%- endmacro %}

{% macro dry_run_marker() -%}
    {{- return('seedtest-analytics dry run: scratch relation, dropped after the dry run') -}}
{%- endmacro %}

{% macro is_dry_run() -%}
    {{- return(env_var('SEEDTEST_DRY_RUN', '') | trim | lower == 'true') -}}
{%- endmacro %}

{# `name` as a dry run names it (dry_run__name), or `name` itself in any other run. #}
{% macro dry_run_alias(name) -%}
    {{- return(dry_run_prefix() ~ name if is_dry_run() else name) -}}
{%- endmacro %}

{#
    dbt's relation names (the project sets no alias of its own): the model's name, with the
    dry run's prefix in a dry run. Read while dbt parses: a dry run keeps its parse in a target
    directory of its own, so switching between the two never re-parses the other's.
#}
{% macro generate_alias_name(custom_alias_name=none, node=none) -%}
    {%- set name = dbt.default__generate_alias_name(custom_alias_name, node) | trim -%}
    {%- if node is not none and node.resource_type in ('model', 'seed', 'snapshot') -%}
        {{- dry_run_alias(name) -}}
    {%- else -%}
        {{- name -}}
    {%- endif -%}
{%- endmacro %}

{#
    dbt sets a relation's comment (persist_docs) in the transaction that builds it: in a dry
    run that comment is the marker, whatever the model's docs say, so every committed dry-run
    relation proves it is the dry run's own.
#}
{% macro postgres__persist_docs(relation, model, for_relation, for_columns) -%}
    {%- if is_dry_run() -%}
        {%- do run_query(alter_relation_comment(relation, dry_run_marker())) -%}
    {%- else -%}
        {%- do dbt.default__persist_docs(relation, model, for_relation, for_columns) -%}
    {%- endif -%}
{%- endmacro %}
