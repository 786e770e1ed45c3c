{#
    The anchor spine of churn_user_anchors (the churn backtest's input): the days start, start + every, ...
    up to end. Without the vars it is the one day anchor_date, which is what the nightly P/S
    step reads in METRICS_CHURN_MODEL=logistic mode; the backtest and train-churn pass a
    range. Validated here like every other var (nothing unchecked reaches SQL).
#}
{% macro churn_anchor_spine() -%}
    {%- set anchor = anchor_date() -%}
    {#- Read through _var_text: its text is checked before var() can render it. -#}
    {%- set raw_start = _var_text('churn_anchor_start', '') -%}
    {%- set raw_end = _var_text('churn_anchor_end', '') -%}
    {%- set raw_every = _var_text('churn_anchor_every', '') -%}
    {%- set end = anchor if raw_end in (none, '') else validated_date(
        'churn_anchor_end', raw_end | string | trim) -%}
    {%- set start = end if raw_start in (none, '') else validated_date(
        'churn_anchor_start', raw_start | string | trim) -%}
    {%- set every_text = '1' if raw_every in (none, '') else raw_every | string | trim -%}
    {%- if not modules.re.fullmatch('[0-9]{1,4}', every_text) or (every_text | int) < 1 -%}
        {{- _invalid_var('churn_anchor_every', 'a whole number of days from 1 to 9999', every_text) -}}
    {%- endif -%}
    {%- if end > anchor -%}
        {{- _invalid_var('churn_anchor_end', 'on or before anchor_date ' ~ anchor.isoformat(), end) -}}
    {%- endif -%}
    {%- if start > end -%}
        {{- _invalid_var('churn_anchor_start', 'on or before churn_anchor_end ' ~ end.isoformat(), start) -}}
    {%- endif -%}
    {{- return({'start': start, 'end': end, 'every': every_text | int}) -}}
{%- endmacro %}
