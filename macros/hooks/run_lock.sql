{#
    No write after the run lost its lock (seedtest_analytics/db/locking.py). The CLI holds an
    advisory lock in a session of its own and passes that session's pid, application_name and
    lock key in SEEDTEST_LOCK_PID / SEEDTEST_LOCK_NAME / SEEDTEST_LOCK_KEY. This hook runs at
    the start of the run (on-run-start) and first in every model's transaction (pre-hook): it
    takes the shared writer lock for the rest of the transaction and fails the model when the
    lock session is gone, before the model writes anything.

    Plain dbt (no SEEDTEST_LOCK_PID): a command that writes (run, build, seed, snapshot,
    retry) refuses to start while a CLI run holds the lock on the same database and schema,
    and every model takes that same lock for its transaction (or stops, when a CLI run holds
    it), so a plain dbt build is locked like the CLI.
#}
{% macro assert_run_lock(relation=none) -%}
    {{- adapter.dispatch('assert_run_lock', 'seedtest_analytics')(relation) -}}
{%- endmacro %}

{% macro default__assert_run_lock(relation=none) -%}
    {#- Nothing while dbt parses: the lock's pid changes every run, and an environment
        variable read while parsing makes dbt re-parse every model that read it. -#}
    {%- if not execute -%}
        {{- return('') -}}
    {%- endif -%}
    {%- set pid = env_var('SEEDTEST_LOCK_PID', '') | trim -%}
    {%- set name = env_var('SEEDTEST_LOCK_NAME', '') | trim -%}
    {%- set key = env_var('SEEDTEST_LOCK_KEY', '') | trim -%}
    {%- if pid == '' and relation is not none -%}
        {#- Plain dbt, in each model's transaction before it writes: the run lock itself,
            shared (the build's own models run side by side), for the length of the
            transaction, so a plain build and a CLI run never write at the same time (a CLI
            run starting meanwhile waits for the model's transaction, and the plain build's
            next model stops). -#}
do $seedtest_lock$
begin
    if not pg_try_advisory_xact_lock_shared(hashtext('seedtest-analytics:' || current_database() || ':'
        || {{ dbt.string_literal(target.schema) }}), 1) then
        raise exception 'a seedtest-analytics run is in progress on this database and schema (%); stopped before writing %',
            {{ dbt.string_literal(target.schema) }}, {{ dbt.string_literal(relation.identifier) }};
    end if;
end
$seedtest_lock$
    {%- elif pid == '' -%}
        {%- if execute and relation is none
            and flags.WHICH in ('run', 'build', 'seed', 'snapshot', 'retry') -%}
            {#- Free means: taken and given back at once. A failed SQL hook would not stop dbt
                from running the models, a compilation error does. -#}
            {%- set free = run_query(
                "select case when pg_try_advisory_lock(hashtext('seedtest-analytics:' || "
                ~ "current_database() || ':' || " ~ dbt.string_literal(target.schema) ~ "), 1) "
                ~ "then pg_advisory_unlock(hashtext('seedtest-analytics:' || current_database() "
                ~ "|| ':' || " ~ dbt.string_literal(target.schema) ~ "), 1) else false end"
            ).columns[0].values()[0] -%}
            {%- if not free -%}
                {{- exceptions.raise_compiler_error(
                    'a seedtest-analytics run is in progress on this database and schema ('
                    ~ target.schema ~ '); try again when it has finished') -}}
            {%- endif -%}
        {%- endif -%}
    {%- else -%}
        {%- if not modules.re.fullmatch('[0-9]{1,10}', pid)
            or not modules.re.fullmatch('seedtest-analytics lock [0-9a-f]{32}', name)
            or not modules.re.fullmatch('-?[0-9]{1,10}', key) -%}
            {{- exceptions.raise_compiler_error(
                'SEEDTEST_LOCK_PID, SEEDTEST_LOCK_NAME and SEEDTEST_LOCK_KEY are set by the '
                ~ 'seedtest-analytics CLI only (got malformed values)') -}}
        {%- endif -%}
        {%- set holder -%}
    select from pg_locks as l
    join pg_stat_activity as a on a.pid = l.pid
    where l.locktype = 'advisory' and l.granted and l.pid = {{ pid }}
        and l.database = (select oid from pg_database where datname = current_database())
        and a.application_name = '{{ name }}'
        {%- endset -%}
        {%- set lost = 'seedtest-analytics lost its run lock: the lock session (pid ' ~ pid
            ~ ') ended; stopped before writing ' -%}
        {%- if relation is none -%}
            {#- At the start of the run a compilation error stops dbt before any hook or model
                writes (a failed SQL hook would not). -#}
            {%- if execute and not run_query('select exists (' ~ holder ~ ')').columns[0].values()[0] -%}
                {{- exceptions.raise_compiler_error(lost ~ 'anything') -}}
            {%- endif -%}
        {%- else -%}
do $seedtest_lock$
begin
    perform pg_advisory_xact_lock_shared({{ key }}, 2);
    if not exists ({{ holder }}
    ) then
        raise exception '{{ lost ~ relation.identifier }}';
    end if;
end
$seedtest_lock$
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{#
    On Spark the lock lives in the application's PostgreSQL, which Spark SQL cannot see: the
    CLI holds it for the whole run, but a model cannot check it (see the README's Spark
    section). Nothing at the start of the run, no pre-hook statement in the models.
#}
{% macro spark__assert_run_lock(relation=none) -%}
    {%- if relation is none -%}select 1{%- endif -%}
{%- endmacro %}
