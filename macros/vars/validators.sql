{#
    The shapes a var's text may have (a date, a whole or decimal number, a boolean): each
    returns the value or stops the run naming the var.
#}

{#
    The one date rule, the same as the CLI's (seedtest_analytics.config.parse_date; a test runs
    both over the same texts): YYYY-MM-DD in ASCII digits, a real calendar date, on or after
    1900-01-01. Returns what a valid value looks like when the text is not one, else ''.
#}
{% macro date_problem(text) -%}
    {%- set match = modules.re.fullmatch('([0-9]{4})-([0-9]{2})-([0-9]{2})', text) -%}
    {%- if not match -%}
        {{- return('a date as YYYY-MM-DD') -}}
    {%- endif -%}
    {%- set year = match.group(1) | int -%}
    {%- set month = match.group(2) | int -%}
    {%- set day = match.group(3) | int -%}
    {%- if year < 1 or month < 1 or month > 12 or day < 1 -%}
        {{- return('a valid calendar date') -}}
    {%- endif -%}
    {%- if month == 12 -%}
        {%- set last_day = 31 -%}
    {%- else -%}
        {%- set last_day = (modules.datetime.date(year, month + 1, 1)
            - modules.datetime.timedelta(days=1)).day -%}
    {%- endif -%}
    {%- if day > last_day -%}
        {{- return('a valid calendar date') -}}
    {%- endif -%}
    {%- if year < 1900 -%}
        {{- return('on or after 1900-01-01') -}}
    {%- endif -%}
    {{- return('') -}}
{%- endmacro %}

{% macro validated_date(name, raw) -%}
    {%- set problem = date_problem(raw) -%}
    {%- if problem -%}
        {{- _invalid_var(name, problem, raw) -}}
    {%- endif -%}
    {{- return(modules.datetime.date.fromisoformat(raw)) -}}
{%- endmacro %}

{% macro validated_int(name, default, minimum=0, maximum=36500) -%}
    {%- set raw = _var_text(name, default) -%}
    {%- if not modules.re.fullmatch('[0-9]{1,6}', raw) -%}
        {{- _invalid_var(name, 'a whole number', raw) -}}
    {%- endif -%}
    {%- set value = raw | int -%}
    {%- if value < minimum or value > maximum -%}
        {{- _invalid_var(name, 'between ' ~ minimum ~ ' and ' ~ maximum, raw) -}}
    {%- endif -%}
    {{- return(value) -}}
{%- endmacro %}

{% macro validated_bool(name, default) -%}
    {%- set raw = _var_text(name, default) | lower -%}
    {%- if raw in ('true', '1', 'yes', 'on', 'y', 't') -%}
        {{- return(true) -}}
    {%- elif raw in ('false', '0', 'no', 'off', 'n', 'f', '') -%}
        {{- return(false) -}}
    {%- endif -%}
    {{- _invalid_var(name, 'true or false', raw) -}}
{%- endmacro %}

{% macro validated_number(name, default) -%}
    {%- set raw = _var_text(name, default) -%}
    {#- Python's float text included: up to 17 significant digits, 1e-05, 1e+20. -#}
    {%- if not modules.re.fullmatch(
        '[+-]?([0-9]{1,20}([.][0-9]{0,20})?|[.][0-9]{1,20})([eE][+-]?[0-9]{1,3})?', raw
    ) -%}
        {{- _invalid_var(name, 'a decimal number', raw) -}}
    {%- endif -%}
    {{- return(raw) -}}
{%- endmacro %}
