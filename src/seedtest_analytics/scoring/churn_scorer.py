"""The churn scorer, chosen once from METRICS_CHURN_MODEL: `auto` (the default: the champion
promoted by `train-churn`, else the S formula; scoring.churn_champion), `heuristic` (the S
formula of scoring.formulas, computed with P) or `logistic` (the latest model trained by
`train-churn`, scoring.churn_model). The rest of the runtime asks the scorer, never the setting."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ..config import Settings
from ..db.connection import ConnectionParams

if TYPE_CHECKING:
    import psycopg

    from ..db.kpi_writer import Score


class ChurnScorer(Protocol):
    name: str
    # Reads churn_user_anchors and the trained models on PostgreSQL (so not with Spark).
    needs_postgres_models: bool

    def check(self, params: ConnectionParams, settings: Settings) -> None:
        """Before a scoring run builds anything: what the scorer needs is there (else
        UsageError)."""
        ...

    def apply(
        self, conn: psycopg.Connection, scores: list[Score], settings: Settings, schema: str
    ) -> list[Score]:
        """`scores` with S as this scorer gives it."""
        ...


class HeuristicScorer:
    name = "heuristic"
    needs_postgres_models = False

    def check(self, params: ConnectionParams, settings: Settings) -> None:
        """Nothing to check: S is computed with P."""

    def apply(
        self, conn: psycopg.Connection, scores: list[Score], settings: Settings, schema: str
    ) -> list[Score]:
        return scores


class LogisticScorer:
    name = "logistic"
    needs_postgres_models = True

    def check(self, params: ConnectionParams, settings: Settings) -> None:
        from .churn_model import check_trained

        check_trained(params, settings)  # no trained model: one line, exit 2

    def apply(
        self, conn: psycopg.Connection, scores: list[Score], settings: Settings, schema: str
    ) -> list[Score]:
        from .churn_model import apply_model

        return apply_model(conn, scores, settings, schema)


class AutoScorer:
    """The promoted champion when one is usable, else the S formula; needs nothing before a
    run (no champion is a normal state), and on Spark it is the formula."""

    name = "auto"
    needs_postgres_models = False

    def check(self, params: ConnectionParams, settings: Settings) -> None:
        """Nothing to check: without a usable champion S is the formula."""

    def apply(
        self, conn: psycopg.Connection, scores: list[Score], settings: Settings, schema: str
    ) -> list[Score]:
        from ..db.failures import database_step
        from ..warehouse import reader
        from .churn_champion import apply_champion

        if not reader.current().beside_weekly_kpi:  # the champion's tables are beside the models
            return scores
        with database_step("reading the churn champion"):
            return apply_champion(conn, scores, settings, schema)


def churn_scorer(settings: Settings) -> ChurnScorer:
    """The scorer METRICS_CHURN_MODEL names (the setting is checked when it is read)."""
    if settings.churn_model == LogisticScorer.name:
        return LogisticScorer()
    if settings.churn_model == AutoScorer.name:
        return AutoScorer()
    return HeuristicScorer()
