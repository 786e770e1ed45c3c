{#
    The rows of the application's attempt view (the user-id rule), for stg_seedtest__attempts: a
    select of the view itself, or, with var attempts_from_exam_results, the same rows derived
    from exam_results by the view's rules (app_schema.sql): one row per element of
    result_json->'questions' (an array; anything else has none) with a non-empty question_id,
    at coalesce(updated_at, created_at) of the exam; id and item_id the view's hashes of the
    exam and question ids; correct = is_correct, else correct, when a JSON boolean, else false;
    response_time_ms = round(time_spent_sec * 1000) (missing or JSON null: 0; not a number or
    not below 2,000,000 s: null); hint_used = used_hints > 0 (a number) or itself (a boolean);
    student_id the uuid form of the exam's user_id, as text. The view calls its STRICT
    app_user_uuid() once per question, which PostgreSQL cannot inline; here the uuid form is
    computed once per exam, with plain expressions. Columns: id, student_id (text), item_id,
    topic_id, correct, response_time_ms, hint_used, completed_at, session_id.
    Written with subqueries, not a WITH: PostgreSQL only pulls a subquery without CTEs up into
    the query that reads it, and only then can it map the user id once per exam, before the
    questions are expanded.
#}
{% macro seedtest_attempt_rows(attempt_view, exam_results) -%}
    {%- if attempts_from_exam_results() and target.type != 'postgres' -%}
        {{- exceptions.raise_compiler_error(
            'var attempts_from_exam_results (reading the questions from exam_results.result_json)'
            ~ ' is PostgreSQL-only: on ' ~ target.type ~ ' load the attempt rows as a table'
        ) -}}
    {%- endif -%}
    {%- if attempts_from_exam_results() -%}
select
    cast(cast(
        'x' || substr(md5(cast(questions.exam_result_id as text) || ':' || questions.question_id), 1, 16)
        as bit (64)
    ) as bigint) as id,
    questions.student_id,
    cast(cast('x' || substr(md5(questions.question_id), 1, 16) as bit (64)) as bigint) as item_id,
    questions.question ->> 'topic' as topic_id,
    coalesce(
        case
            when jsonb_typeof(questions.question -> 'is_correct') = 'boolean'
                then cast(questions.question ->> 'is_correct' as boolean)
        end,
        case
            when jsonb_typeof(questions.question -> 'correct') = 'boolean'
                then cast(questions.question ->> 'correct' as boolean)
        end,
        false
    ) as correct,
    case
        when
            questions.question -> 'time_spent_sec' is null
            or jsonb_typeof(questions.question -> 'time_spent_sec') = 'null'
            then 0
        when
            jsonb_typeof(questions.question -> 'time_spent_sec') = 'number'
            and abs(cast(questions.question ->> 'time_spent_sec' as numeric)) < 2000000
            then cast(round(cast(questions.question ->> 'time_spent_sec' as numeric) * 1000) as integer)
    end as response_time_ms,
    case jsonb_typeof(questions.question -> 'used_hints')
        when 'number' then cast(questions.question ->> 'used_hints' as numeric) > 0
        when 'boolean' then cast(questions.question ->> 'used_hints' as boolean)
        else false
    end as hint_used,
    questions.completed_at,
    questions.session_id
from (
    select
        exams.exam_result_id,
        exams.session_id,
        exams.completed_at,
        exams.student_id,
        answers.question,
        answers.question ->> 'question_id' as question_id
    from (
        select
            id as exam_result_id,
            session_id,
            coalesce(updated_at, created_at) as completed_at,
            case
                when {{ is_uuid_shaped('user_id') }} then lower(user_id)
                else {{ md5_uuid('user_id') }}
            end as student_id,
            case
                when jsonb_typeof(result_json -> 'questions') = 'array'
                    then result_json -> 'questions'
                else cast('[]' as jsonb)
            end as questions
        from {{ exam_results }}
    ) as exams
    cross join lateral jsonb_array_elements(exams.questions) as answers (question)
) as questions
where coalesce(questions.question_id, '') <> ''
    {%- else -%}
select
    id,
    cast(student_id as {{ sql_type('text') }}) as student_id,
    item_id,
    topic_id,
    correct,
    response_time_ms,
    hint_used,
    completed_at,
    session_id
from {{ attempt_view }}
    {%- endif -%}
{%- endmacro %}
