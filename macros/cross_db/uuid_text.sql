{#
    The two engine-specific pieces of the application's user-id rule (macros/user_ids/):
    whether a text is uuid-shaped, and md5 of a text shaped as uuid text.
#}

{# Whether a text is a uuid (8-4-4-4-12 hex digits, any case). #}
{% macro is_uuid_shaped(text_sql) -%}
    {{- adapter.dispatch('is_uuid_shaped', 'seedtest_analytics')(text_sql) -}}
{%- endmacro %}

{% macro default__is_uuid_shaped(text_sql) -%}
    ({{ text_sql }} ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')
{%- endmacro %}

{# Java's `$` also matches before a final line break: the length check makes it PostgreSQL's. #}
{% macro spark__is_uuid_shaped(text_sql) -%}
    (
        length({{ text_sql }}) = 36
        and {{ text_sql }} rlike '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
    )
{%- endmacro %}

{# md5 of a text as uuid text (lowercase 8-4-4-4-12): PostgreSQL's cast(cast(md5(x) as uuid) as text). #}
{% macro md5_uuid(text_sql) -%}
    {{- adapter.dispatch('md5_uuid', 'seedtest_analytics')(text_sql) -}}
{%- endmacro %}

{% macro default__md5_uuid(text_sql) -%}
    cast(cast(md5({{ text_sql }}) as uuid) as text)
{%- endmacro %}

{% macro spark__md5_uuid(text_sql) -%}
    regexp_replace(md5({{ text_sql }}), '^(.{8})(.{4})(.{4})(.{4})(.{12})$', '$1-$2-$3-$4-$5')
{%- endmacro %}
