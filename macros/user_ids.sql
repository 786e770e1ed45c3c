{#
    The application's user-id rule (the user-id rule): a uuid-shaped id stands for itself, any other
    id appears in uuid-typed columns as md5(id) formatted as a uuid.
#}

{% macro is_uuid_shaped(text_sql) -%}
    ({{ text_sql }} ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')
{%- endmacro %}

{# The uuid text (lowercase, 8-4-4-4-12) the application derives from a user id. #}
{% macro uuid_form(text_sql) -%}
    case
        when {{ is_uuid_shaped(text_sql) }} then lower({{ text_sql }})
        else cast(cast(md5({{ text_sql }}) as uuid) as text)
    end
{%- endmacro %}

{#
    The application user id of `user_sql` (either form), given `ids_alias`, a left join of
    int_user_ids on `ids_alias.user_uuid = lower(user_sql)` (see join_user_ids). An id that
    cannot be mapped keeps its own text. Used once per source, by the int_*_mapped models and
    int_attempts_mapped; everything downstream reads ids that are already mapped.
#}
{% macro app_user_id(user_sql, ids_alias='user_ids') -%}
    {%- if map_user_ids() -%}
        coalesce({{ ids_alias }}.app_user_id, cast({{ user_sql }} as text))
    {%- else -%}
        cast({{ user_sql }} as text)
    {%- endif -%}
{%- endmacro %}

{# With var map_user_ids false (ids are already application ids) this joins nothing. #}
{% macro join_user_ids(user_sql, ids_alias='user_ids') -%}
    {%- set user_ids = ref('int_user_ids') -%}
    {%- if map_user_ids() -%}
    left join {{ user_ids }} as {{ ids_alias }}
        on {{ ids_alias }}.user_uuid = lower(cast({{ user_sql }} as text))
    {%- endif -%}
{%- endmacro %}
