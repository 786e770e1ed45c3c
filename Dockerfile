# seedtest-analytics: the dbt project plus the Python package, as one batch image.
#
#   docker build -t seedtest-analytics:0.1.0 .
#   docker build --build-arg EXTRAS=backtest -t seedtest-analytics-backtest:0.1.0 .
#   docker run --rm --read-only --tmpfs /tmp -e DATABASE_URL=postgresql://... \
#       seedtest-analytics:0.1.0 run --date 2025-11-01 --dry-run
#
# The image runs as uid 10001 with a read-only root filesystem in mind: everything it writes
# (dbt target/ and logs/) goes under /tmp, which the Kubernetes manifests mount as an emptyDir.

ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------------------------
# Stage 1: the runtime package (src/seedtest_analytics only: the development tools in tools/
# are not installed) and its dependencies at the versions and hashes of requirements.lock,
# in a self-contained virtualenv. Two builds of one commit install the same files.
# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
COPY requirements.lock requirements-backtest.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock
# Optional extras, each pinned by its own lock: `--build-arg EXTRAS=backtest` adds numpy,
# scikit-learn and matplotlib for `backtest` and `train-churn` (the image the train-churn
# CronJob runs, seedtest-analytics-backtest); the nightly image leaves them out.
ARG EXTRAS=""
RUN for extra in ${EXTRAS}; do \
        pip install --require-hashes --no-deps -r "requirements-${extra}.lock" || exit 1; \
    done
COPY pyproject.toml README.md ./
COPY src/ ./src/
# Nothing left to resolve: the lock holds every dependency and the build backend.
RUN pip install --no-deps --no-build-isolation . \
    && pip check

# ---------------------------------------------------------------------------------------------
# Stage 2: collect the dbt project: the paths listed in dbt-project-files.txt (the one list of
# what the image ships). Directories that may be empty (and so absent from a git checkout),
# such as seeds/ or analyses/, are copied only when present.
# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS project

WORKDIR /src
COPY . .
RUN set -eu; \
    mkdir -p /project; \
    for path in $(grep -v '^#' dbt-project-files.txt); do \
        if [ -e "$path" ]; then cp -r --parents "$path" /project/; fi; \
    done; \
    test -f /project/dbt_project.yml; \
    test -f /project/selectors.yml; \
    test -f /project/profiles/profiles.yml; \
    test -d /project/models

# ---------------------------------------------------------------------------------------------
# Stage 3: the runtime image.
# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="seedtest-analytics" \
      org.opencontainers.image.description="Nightly SeedTest analytics: dbt build of features_topic_daily and user activity, then P/S into weekly_kpi"

ARG APP_UID=10001
ARG APP_GID=10001

RUN groupadd --system --gid "${APP_GID}" seedtest \
    && useradd --system --uid "${APP_UID}" --gid "${APP_GID}" --no-create-home \
       --home-dir /tmp --shell /usr/sbin/nologin seedtest

COPY --from=builder /opt/venv /opt/venv
# The dbt project (read-only at run time; dbt writes only to DBT_TARGET_PATH / DBT_LOG_PATH).
COPY --from=project /project/ /app/
WORKDIR /app

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    SEEDTEST_PROJECT_DIR=/app \
    DBT_PROFILES_DIR=/app/profiles \
    DBT_TARGET_PATH=/tmp/dbt/target \
    DBT_LOG_PATH=/tmp/dbt/logs \
    DBT_SEND_ANONYMOUS_USAGE_STATS=false \
    DBT_USE_COLORS=false

USER 10001:10001

# Fail the build, not the first night, when the project is broken: parse the dbt project as
# the runtime user (dbt parse needs no database; the connection values are dummies), list
# every job selector of selectors.yml (a selector the image lacks fails here), and make
# sure the time zone database the day boundaries depend on is present.
RUN SEEDTEST_PGHOST=localhost \
    SEEDTEST_PGPORT=5432 \
    SEEDTEST_PGUSER=build \
    DBT_ENV_SECRET_PGPASSWORD=build \
    SEEDTEST_PGDATABASE=build \
    SEEDTEST_PGSSLMODE=disable \
    dbt parse --project-dir /app --profiles-dir /app/profiles \
    && for selector in $(sed -n 's/^  - name: *//p' /app/selectors.yml); do \
         SEEDTEST_PGHOST=localhost SEEDTEST_PGPORT=5432 SEEDTEST_PGUSER=build \
         DBT_ENV_SECRET_PGPASSWORD=build SEEDTEST_PGDATABASE=build SEEDTEST_PGSSLMODE=disable \
         dbt ls --project-dir /app --profiles-dir /app/profiles --selector "$selector" \
           --quiet > /dev/null || exit 1; \
       done \
    && python -c "import zoneinfo; zoneinfo.ZoneInfo('Asia/Seoul')" \
    && seedtest-analytics --help > /dev/null \
    && rm -rf /tmp/dbt

ENTRYPOINT ["seedtest-analytics"]
CMD ["run"]
