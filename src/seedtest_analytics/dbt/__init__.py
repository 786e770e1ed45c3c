"""Running dbt: the runner, the checks before a build writes, `dbt retry`, the docs site."""
