{#
    on-run-start: drops the views an earlier version of the project kept for models that are
    now ephemeral (staging, the improvement index, the features' theta): a view over the
    application's tables pins them, so its migrations (`alter table ... alter column ...
    type`, `drop table`) would fail. Only views named like one of this project's ephemeral
    models, in its schema: its name, or a name it had before (config meta `former_names`).
#}
{% macro drop_views_of_ephemeral_models() -%}
    {%- if execute -%}
        {%- for node in graph.nodes.values()
            if node.resource_type == 'model' and node.config.materialized == 'ephemeral' -%}
            {%- for identifier in [node.alias or node.name]
                + ((node.config.get('meta') or {}).get('former_names') or []) -%}
                {%- set relation = adapter.get_relation(
                    database=target.database, schema=target.schema, identifier=identifier
                ) -%}
                {%- if relation is not none and relation.is_view -%}
                    {#- through the adapter, so that dbt's relation cache forgets it (and the
                        views that depended on it, dropped with it) -#}
                    {%- do adapter.drop_relation(relation) -%}
                {%- endif -%}
            {%- endfor -%}
        {%- endfor -%}
    {%- endif -%}
    select 1
{%- endmacro %}
