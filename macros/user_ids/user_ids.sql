{#
    The application's user-id rule: a uuid-shaped id stands for itself, any other id appears
    in uuid-typed columns as md5(id) formatted as a uuid.
#}

{# The uuid text (lowercase, 8-4-4-4-12) the application derives from a user id. #}
{% macro uuid_form(text_sql) -%}
    case
        when {{ is_uuid_shaped(text_sql) }} then lower({{ text_sql }})
        else {{ md5_uuid(text_sql) }}
    end
{%- endmacro %}

{#
    The application user id of `user_sql` (either form), given `ids_alias`, a left join of
    int_user_ids on `ids_alias.user_uuid = lower(user_sql)` (see join_user_ids). An id that
    cannot be mapped keeps its own text. Used once per source, by the int_*__mapped models and
    int_attempts__windowed; everything downstream reads ids that are already mapped.
#}
{% macro app_user_id(user_sql, ids_alias='user_ids') -%}
    {%- if map_user_ids() -%}
        coalesce({{ ids_alias }}.app_user_id, cast({{ user_sql }} as {{ sql_type('text') }}))
    {%- else -%}
        cast({{ user_sql }} as {{ sql_type('text') }})
    {%- endif -%}
{%- endmacro %}

{# With var map_user_ids false (ids are already application ids) this joins nothing. #}
{% macro join_user_ids(user_sql, ids_alias='user_ids') -%}
    {%- set user_ids = ref('int_user_ids') -%}
    {%- if map_user_ids() -%}
    left join {{ user_ids }} as {{ ids_alias }}
        on {{ ids_alias }}.user_uuid = lower(cast({{ user_sql }} as {{ sql_type('text') }}))
    {%- endif -%}
{%- endmacro %}
