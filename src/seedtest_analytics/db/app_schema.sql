-- The application schema of SeedTest, as the application defines it.
--
-- One section per object, each headed `-- object: <kind> <name>`. init-db (seedtest_analytics.db.app_schema)
-- runs a section only when its object is missing, so it never replaces or alters anything a
-- database already has: not the application's tables, not its attempt view or app_user_uuid(),
-- and no index on an existing table (an index build would lock the application's table; the
-- operator guide, docs/operations.md, gives the `create index concurrently` statement instead).
-- The placeholder schema name is substituted by seedtest_analytics.db.app_schema.

-- object: schema {schema}
create schema {schema};

-- object: table exam_results
create table {schema}.exam_results (
    id uuid primary key,
    session_id text not null unique,
    user_id text,
    result_json jsonb not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

-- The application's own indexes, created with the table: last activity by user, and the
-- activity time the attempt view exposes (a window on completed_at is then an index range
-- scan, not a full scan).
create index exam_results_user_id_idx on {schema}.exam_results (user_id);
create index exam_results_activity_at_idx
    on {schema}.exam_results ((coalesce(updated_at, created_at)));

-- object: table session
create table {schema}.session (
    id text primary key,
    user_id text,
    started_at timestamptz not null,
    ended_at timestamptz
);

-- object: table student_topic_theta
create table {schema}.student_topic_theta (
    user_id text not null,
    topic_id text not null,
    theta double precision,
    se double precision,
    updated_at timestamptz not null default now(),
    primary key (user_id, topic_id)
);

-- object: table mirt_ability
create table {schema}.mirt_ability (
    user_id text not null,
    theta double precision,
    se double precision,
    fitted_at timestamptz not null,
    version text
);

-- object: table ability_estimates
create table {schema}.ability_estimates (
    user_id text not null,
    mean double precision,
    sd double precision,
    fitted_at timestamptz not null
);

-- object: table interest_goal
create table {schema}.interest_goal (
    user_id text not null,
    topic_id text not null,
    target_level numeric,
    priority smallint,
    created_at timestamptz not null default now()
);

-- object: table weekly_kpi
create table {schema}.weekly_kpi (
    user_id text not null,
    week_start date not null,
    kpis jsonb not null default '{{}}'::jsonb,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (user_id, week_start)
);

-- object: function app_user_uuid(text)
-- The application's user-id rule: a uuid-shaped id is itself, any other id is the md5 of it
-- shaped as a uuid.
create function {schema}.app_user_uuid(p_user_id text) returns uuid
language sql immutable strict parallel safe as $$
    select case
        when p_user_id ~* '^[0-9a-f]{{8}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{4}}-[0-9a-f]{{12}}$'
            then p_user_id::uuid
        else md5(p_user_id)::uuid
    end
$$;

-- object: view attempt
-- One row per answered question of an exam (the user-id rule). The id is stable across
-- inserts and deletes: a hash of the exam and the question, so a question answered twice in
-- one exam session shows up as the same attempt id. Values of the wrong JSON type read as missing
-- instead of failing the whole view.
create view {schema}.attempt as
select
    ('x' || substr(md5(er.id::text || ':' || (q.question ->> 'question_id')), 1, 16))::bit(64)::bigint
        as id,
    {schema}.app_user_uuid(er.user_id) as student_id,
    ('x' || substr(md5(q.question ->> 'question_id'), 1, 16))::bit(64)::bigint as item_id,
    q.question ->> 'topic' as topic_id,
    coalesce(
        case when jsonb_typeof(q.question -> 'is_correct') = 'boolean'
            then (q.question ->> 'is_correct')::boolean end,
        case when jsonb_typeof(q.question -> 'correct') = 'boolean'
            then (q.question ->> 'correct')::boolean end,
        false
    ) as correct,
    case
        when q.question -> 'time_spent_sec' is null
            or jsonb_typeof(q.question -> 'time_spent_sec') = 'null' then 0
        when jsonb_typeof(q.question -> 'time_spent_sec') = 'number'
            and abs((q.question ->> 'time_spent_sec')::numeric) < 2000000
            then round((q.question ->> 'time_spent_sec')::numeric * 1000)::int
    end as response_time_ms,
    case jsonb_typeof(q.question -> 'used_hints')
        when 'number' then (q.question ->> 'used_hints')::numeric > 0
        when 'boolean' then (q.question ->> 'used_hints')::boolean
        else false
    end as hint_used,
    coalesce(er.updated_at, er.created_at) as completed_at,
    er.session_id
from {schema}.exam_results as er
cross join lateral jsonb_array_elements(
    case when jsonb_typeof(er.result_json -> 'questions') = 'array'
        then er.result_json -> 'questions' else '[]'::jsonb end
) as q (question)
where coalesce(q.question ->> 'question_id', '') <> '';
