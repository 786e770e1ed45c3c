{#
    Materialization `published_table` (the marts on PostgreSQL, dbt_project.yml): a mart keeps
    its identity across runs, so what others built on it survives every night: a view in
    another schema over it, a reader's grant, a comment.

    - The table does not exist yet: dbt's own table materialization builds it.
    - It exists with the same shape (column names, order, types, not-null, and the contract's
      constraints, compared with an empty copy the model's SQL and contract would create): its
      contents are replaced in the model's one transaction (truncate, then insert the model's
      rows). The contract is still enforced: its columns are checked against the SQL, and the
      table's constraints check every row inserted.
    - Its shape changed (an upgrade of the project): when a view or another object depends on
      it, the run stops with one line naming them, before anything is dropped; when nothing
      does, a new table replaces it (never with cascade), with the old one's grants.

    On Spark the marts keep dbt's table materialization (dbt_project.yml picks by target).
#}
{% materialization published_table, adapter='postgres' %}
    {%- set existing = load_cached_relation(this) -%}
    {%- if existing is none or not existing.is_table -%}
        {{- return(dbt.materialization_table_default()) -}}
    {%- endif -%}
    {%- set target_relation = this.incorporate(type='table') -%}
    {%- set grant_config = config.get('grants') -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {#- an empty table as the model would create it now (contract included); created and
        dropped inside the transaction, so nobody ever sees it -#}
    {%- set probe = make_intermediate_relation(target_relation, '__dbt_shape') -%}
    {%- call statement('published_table_probe') -%}
        {{ get_create_table_as_sql(False, probe, 'select * from (' ~ sql ~ ') as model_rows limit 0') }}
    {%- endcall -%}
    {%- set changes = run_query(published_table_shape_changes(probe, target_relation)) -%}
    {%- call statement('published_table_probe_drop') -%}
        drop table {{ probe }}
    {%- endcall -%}

    {%- if changes.rows | length == 0 -%}
        {%- set columns = get_quoted_csv(
            adapter.get_columns_in_relation(target_relation) | map(attribute='name')
        ) -%}
        {%- call statement('main') -%}
            truncate table {{ target_relation }};
            insert into {{ target_relation }} ({{ columns }})
            select {{ columns }} from ({{ sql }}) as model_rows
        {%- endcall -%}
    {%- else -%}
        {%- set dependents = run_query(published_table_dependents(target_relation)) -%}
        {%- if dependents.rows | length > 0 -%}
            {{- exceptions.raise_compiler_error(
                target_relation.identifier ~ ' not rebuilt, nothing dropped: its shape changed ('
                ~ (changes.columns[0].values() | join(', ')) ~ '), and a new table would take '
                ~ 'with it what depends on it: ' ~ (dependents.columns[0].values() | join(', '))
                ~ '; drop that (keep its definition), run again, then recreate it') -}}
        {%- endif -%}
        {%- set intermediate = make_intermediate_relation(target_relation) -%}
        {%- call statement('main') -%}
            {{ get_create_table_as_sql(False, intermediate, sql) }}
        {%- endcall -%}
        {%- do create_indexes(intermediate) -%}
        {%- call statement('published_table_swap') -%}
            {{ published_table_copy_grants(target_relation, intermediate) }};
            drop table {{ target_relation }};
            alter table {{ intermediate }} rename to {{ adapter.quote(target_relation.identifier) }}
        {%- endcall -%}
        {%- do adapter.cache_dropped(target_relation) -%}
        {%- do adapter.cache_renamed(intermediate, target_relation) -%}
    {%- endif -%}

    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {%- do apply_grants(target_relation, grant_config, should_revoke=false) -%}
    {%- do persist_docs(target_relation, model) -%}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}

{#
    What differs between the empty `probe` (what the model would create now) and `existing`:
    one row per difference (a column by position, or a constraint), none when they match.
#}
{% macro published_table_shape_changes(probe, existing) -%}
with

columns_of as (
    select
        a.attrelid,
        row_number() over (partition by a.attrelid order by a.attnum) as position,
        a.attname::text
        || ' ' || format_type(a.atttypid, a.atttypmod)
        || case when a.attnotnull then ' not null' else '' end as spec
    from pg_attribute as a
    where
        a.attrelid in ({{ _sql_text(probe | string) }}::regclass, {{ _sql_text(existing | string) }}::regclass)
        and a.attnum > 0
        and not a.attisdropped
),

constraints_of as (
    select
        c.conrelid as attrelid,
        c.contype::text || ' ' || pg_get_constraintdef(c.oid) as spec
    from pg_constraint as c
    where
        c.conrelid in ({{ _sql_text(probe | string) }}::regclass, {{ _sql_text(existing | string) }}::regclass)
        and c.contype in ('c', 'p', 'u', 'x')
),

new_columns as (
    select position, spec from columns_of where attrelid = {{ _sql_text(probe | string) }}::regclass
),

old_columns as (
    select position, spec from columns_of where attrelid = {{ _sql_text(existing | string) }}::regclass
),

new_constraints as (
    select spec from constraints_of where attrelid = {{ _sql_text(probe | string) }}::regclass
),

old_constraints as (
    select spec from constraints_of where attrelid = {{ _sql_text(existing | string) }}::regclass
)

select coalesce('column ' || old_columns.spec || ' -> ' || new_columns.spec,
                'new column ' || new_columns.spec,
                'dropped column ' || old_columns.spec) as change
from new_columns
full join old_columns on new_columns.position = old_columns.position
where new_columns.spec is distinct from old_columns.spec

union all

select 'constraint ' || coalesce(new_constraints.spec, old_constraints.spec)
from new_constraints
full join old_constraints on new_constraints.spec = old_constraints.spec
where new_constraints.spec is null or old_constraints.spec is null
{%- endmacro %}

{# Every object outside the table itself that depends on it (views, foreign keys, ...). #}
{% macro published_table_dependents(relation) -%}
select distinct pg_describe_object(
    coalesce(rule_class.oid, d.classid),
    coalesce(rule.ev_class, d.objid),
    0
) as dependent
from pg_depend as d
left join pg_rewrite as rule
    on d.classid = 'pg_rewrite'::regclass and rule.oid = d.objid
left join pg_class as rule_class
    on rule.oid is not null and rule_class.oid = 'pg_class'::regclass
where
    d.refclassid = 'pg_class'::regclass
    and d.refobjid = {{ _sql_text(relation | string) }}::regclass
    and d.deptype = 'n'
    and coalesce(rule.ev_class, 0) <> d.refobjid
order by 1
{%- endmacro %}

{# Re-grants on `new` every privilege another role holds on `old` (an upgrade's new table). #}
{% macro published_table_copy_grants(old, new) -%}
do $seedtest_grants$
declare
    granted record;
begin
    for granted in
        select acl.privilege_type, acl.grantee, acl.is_grantable
        from pg_class as c, aclexplode(c.relacl) as acl
        where c.oid = {{ _sql_text(old | string) }}::regclass and acl.grantee <> c.relowner
    loop
        execute format(
            'grant %s on %s to %s%s',
            granted.privilege_type,
            {{ _sql_text(new | string) }},
            case when granted.grantee = 0 then 'public'
                else quote_ident(pg_get_userbyid(granted.grantee)) end,
            case when granted.is_grantable then ' with grant option' else '' end
        );
    end loop;
end
$seedtest_grants$
{%- endmacro %}
