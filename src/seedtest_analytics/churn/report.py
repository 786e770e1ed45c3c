"""The backtest's HTML page: one self-contained file (matplotlib PNGs embedded as base64)."""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
from collections.abc import Sequence
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from .evaluation import PROBABILITY_SCORERS, SCORERS, auc, brier, roc_curve

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .evaluation import Backtest

COLOURS = {"heuristic": "#d62728", "days_inactive": "#7f7f7f", "logistic": "#1f77b4"}
LABELS = {
    "heuristic": "heuristic (the nightly's S)",
    "days_inactive": "days inactive (baseline)",
    "logistic": "logistic (learned)",
}


def _figure(width: float, height: float, panels: int = 1) -> tuple[Figure, Any]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    axes = figure.subplots(1, panels) if panels > 1 else figure.subplots()
    return figure, axes


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _evaluated(backtest: Backtest, scorer: str) -> Any:
    import numpy as np

    scores = backtest.scores[scorer]
    return np.isfinite(scores)


def _pooled(backtest: Backtest) -> dict[str, dict[str, Any]]:
    return {row["scorer"]: row for row in backtest.report["pooled"]}


def draw_roc(ax: Any, backtest: Backtest) -> None:
    pooled = _pooled(backtest)
    for scorer in SCORERS:
        if scorer not in backtest.scores or not pooled[scorer]["users"]:
            continue
        mask = _evaluated(backtest, scorer)
        fpr, tpr = roc_curve(backtest.scores[scorer][mask], backtest.churned[mask])
        value = pooled[scorer]["auc"]
        label = f"{LABELS[scorer]}: AUC {value:.3f}" if value is not None else LABELS[scorer]
        ax.plot(fpr, tpr, color=COLOURS[scorer], lw=2, label=label)
    ax.plot([0, 1], [0, 1], color="#bbbbbb", ls="--", lw=1, label="chance: AUC 0.5")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="share of returning users flagged (false positives)",
        ylabel="share of churned users flagged (true positives)",
        title="ROC: ranking churners above returners",
    )
    ax.legend(loc="lower right", fontsize=8)


def draw_calibration(ax: Any, backtest: Backtest) -> None:
    pooled = _pooled(backtest)
    for scorer in PROBABILITY_SCORERS:
        row = pooled.get(scorer)
        if row is None or not row["users"]:
            continue
        bins = [b for b in row["calibration"] if b["users"]]
        sizes = [20 + 400 * b["users"] / row["users"] for b in bins]
        ax.plot(
            [b["mean_score"] for b in bins],
            [b["churn_rate"] for b in bins],
            color=COLOURS[scorer],
            lw=1.5,
            alpha=0.8,
        )
        ax.scatter(
            [b["mean_score"] for b in bins],
            [b["churn_rate"] for b in bins],
            s=sizes,
            color=COLOURS[scorer],
            alpha=0.7,
            label=f"{LABELS[scorer]}: Brier {row['brier']:.3f}",
        )
    ax.plot([0, 1], [0, 1], color="#bbbbbb", ls="--", lw=1, label="perfectly calibrated")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="predicted churn risk (mean score in the bin)",
        ylabel="observed churn rate in the bin",
        title="Calibration: does a score of 0.7 mean 70%?",
    )
    ax.legend(loc="lower right", fontsize=8)


def draw_auc_over_time(ax: Any, backtest: Backtest) -> None:
    report = backtest.report
    by_scorer: dict[str, list[tuple[dt.date, float]]] = {}
    rates: dict[dt.date, float] = {}
    for row in report["results"]:
        day = dt.date.fromisoformat(row["anchor"])
        if row["scorer"] == "heuristic" and row["users"]:
            rates[day] = row["churned"] / row["users"]
        if row["auc"] is not None:
            by_scorer.setdefault(row["scorer"], []).append((day, row["auc"]))
    if rates:
        twin = ax.twinx()
        days = sorted(rates)
        width = max(0.8, 0.6 * min(((b - a).days for a, b in pairwise(days)), default=1))
        twin.bar(days, [rates[d] for d in days], width=width, color="#dddddd", zorder=0)
        twin.set(ylim=(0, 1), ylabel="churn rate of the inactive users (grey bars)")
        ax.set_zorder(twin.get_zorder() + 1)
        ax.patch.set_visible(False)
    for scorer in SCORERS:
        points = by_scorer.get(scorer)
        if points:
            ax.plot(
                [p[0] for p in points],
                [p[1] for p in points],
                color=COLOURS[scorer],
                marker="o",
                ms=3,
                lw=1.5,
                label=LABELS[scorer],
            )
    model = report.get("logistic_model")
    if model:
        until = dt.date.fromisoformat(model["trained_until"])
        ax.axvline(until, color=COLOURS["logistic"], ls=":", lw=1)
        ax.annotate(
            f" v{model['version']} learned up to here",
            (until, 0.02),
            color=COLOURS["logistic"],
            fontsize=8,
        )
    ax.axhline(0.5, color="#bbbbbb", ls="--", lw=1)
    ax.set(ylim=(0, 1), ylabel="AUC", title="AUC per anchor")
    if by_scorer:
        ax.legend(loc="lower left", fontsize=8)
    ax.tick_params(axis="x", labelrotation=30)


def figure_pngs(backtest: Backtest) -> dict[str, bytes]:
    pngs = {}
    for name, draw, size in (
        ("roc", draw_roc, (6, 5)),
        ("calibration", draw_calibration, (6, 5)),
        ("auc", draw_auc_over_time, (10, 4)),
    ):
        figure, ax = _figure(*size)
        draw(ax, backtest)
        pngs[name] = _png(figure)
    return pngs


def overview_png(backtest: Backtest) -> bytes:
    """The three charts side by side (the README's picture)."""
    figure, axes = _figure(18, 5, panels=3)
    draw_roc(axes[0], backtest)
    draw_calibration(axes[1], backtest)
    draw_auc_over_time(axes[2], backtest)
    return _png(figure)


def _num(value: float | None, digits: int = 3) -> str:
    return "&ndash;" if value is None else f"{value:.{digits}f}"


def expected_calibration_error(calibration: Sequence[dict[str, Any]] | None) -> float | None:
    if not calibration:
        return None
    users = sum(b["users"] for b in calibration)
    if not users:
        return None
    return float(
        sum(
            b["users"] / users * abs(b["mean_score"] - b["churn_rate"])
            for b in calibration
            if b["users"]
        )
    )


def _same_anchors(backtest: Backtest) -> str:
    """heuristic and logistic on exactly the user-anchors logistic was evaluated on."""
    if "logistic" not in backtest.scores:
        return ""
    mask = _evaluated(backtest, "logistic")
    if not mask.any():
        return ""
    churned = backtest.churned[mask]
    cells = []
    for scorer in SCORERS:
        scores = backtest.scores[scorer][mask]
        probability = scorer in PROBABILITY_SCORERS
        cells.append(
            f"<tr><td>{LABELS[scorer]}</td><td>{_num(auc(scores, churned))}</td>"
            f"<td>{_num(brier(scores, churned) if probability else None)}</td></tr>"
        )
    return (
        "<h3>On the same user-anchors</h3><p>The learned model is only evaluated on anchors "
        "after its training window, so the pooled rows above cover different anchors. On the "
        f"{int(mask.sum())} user-anchors it was evaluated on:</p>"
        "<table><tr><th>scorer</th><th>AUC</th><th>Brier</th></tr>" + "".join(cells) + "</table>"
    )


SEGMENT_TITLES = {
    "inactive_7_13": "Newly inactive: 7-13 days (where a first message is decided)",
    "spells": "One row per inactivity spell (its first anchor)",
    "inactive_14_29": "Inactive 14-29 days",
    "inactive_30_plus": "Inactive 30 days or more",
    "all": "Every user-anchor (pooled)",
}


def _ci(value: float | None, interval: Sequence[float] | None) -> str:
    if value is None:
        return "&ndash;"
    if not interval:
        return _num(value)
    return (
        f"<b>{_num(value)}</b> <span class='note'>[{_num(interval[0])}, {_num(interval[1])}]</span>"
    )


def decision_tables(report: dict[str, Any]) -> str:
    """The segments where outreach is decided, each a table of the scorers with intervals."""
    decision = report.get("decision")
    if not decision:
        return ""
    parts = []
    for name, title in SEGMENT_TITLES.items():
        segment = decision["segments"].get(name)
        if segment is None:
            continue
        share = segment["churned_came_back_later_share"]
        rows = "".join(
            f"<tr><td>{LABELS.get(scorer, html.escape(scorer))}</td><td>{row['rows']}</td>"
            f"<td>{_ci(row['auc'], row['auc_ci'])}</td>"
            f"<td>{_ci(row['brier'], row['brier_ci'])}</td>"
            f"<td>{_ci(row['calibration_error'], row['calibration_error_ci'])}</td></tr>"
            for scorer, row in segment["scorers"].items()
        )
        parts.append(
            f"<h3>{title}</h3><p>{segment['rows']} rows of {segment['users']} users, "
            f"{segment['churned']} churned; of those, {segment['churned_came_back_later']} "
            f"({_num(None if share is None else 100 * share, 1)}%) came back after the "
            "horizon.</p><table><tr><th>scorer</th><th>rows</th><th>AUC</th><th>Brier</th>"
            f"<th>calibration error</th></tr>{rows}</table>"
        )
    return (
        "<h2>Where outreach is decided</h2><p class='note'>In brackets: "
        f"{100 * decision['confidence']:.0f}% intervals from {decision['resamples']} "
        "resamples of the users (each user's rows together).</p>" + "".join(parts)
    )


def render_html(backtest: Backtest) -> str:
    report = backtest.report
    pngs = {
        name: base64.b64encode(data).decode("ascii") for name, data in figure_pngs(backtest).items()
    }
    anchors = sorted({row["anchor"] for row in report["results"]})
    model = report.get("logistic_model")
    pooled_rows = []
    for row in report["pooled"]:
        share = row["churned"] / row["users"] if row["users"] else None
        ece = expected_calibration_error(row["calibration"])
        pooled_rows.append(
            f"<tr><td><span class='dot' style='background:{COLOURS[row['scorer']]}'></span>"
            f"{LABELS[row['scorer']]}</td><td>{row['users']}</td><td>{row['churned']} "
            f"({_num(share and 100 * share, 1)}%)</td><td><b>{_num(row['auc'])}</b></td>"
            f"<td><b>{_num(row['brier'])}</b></td><td>{_num(ece)}</td></tr>"
        )
    anchor_rows = "".join(
        f"<tr><td>{row['anchor']}</td><td>{row['scorer']}</td><td>{row['users']}</td>"
        f"<td>{row['churned']}</td><td>{_num(row['auc'])}</td><td>{_num(row['brier'])}</td>"
        "</tr>"
        for row in report["results"]
    )
    left_out = ", ".join(report["anchors_left_out"]) or "none"
    model_text = (
        f"logistic = model v{model['version']}, trained on anchors {model['first_anchor']} .. "
        f"{model['last_anchor']} with outcomes up to {model['trained_until']} (package "
        f"{html.escape(model['package_version'])}); evaluated on the "
        f"{model['anchors_evaluated']} anchors after that only."
        if model
        else "No trained churn model: logistic is not part of this backtest "
        "(<code>seedtest-analytics train-churn --until YYYY-MM-DD</code>)."
    )
    span = f"{anchors[0]} .. {anchors[-1]}" if anchors else "none"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Churn backtest {span}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222;
       line-height: 1.45; padding: 0 1em; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1em; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 0.3em 0.8em; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
.dot {{ display: inline-block; width: 0.8em; height: 0.8em; border-radius: 50%;
        margin-right: 0.4em; }}
.charts {{ display: flex; flex-wrap: wrap; gap: 1em; }}
img {{ max-width: 100%; }}
.note {{ color: #555; font-size: 0.92em; }}
</style></head><body>
<h1>Is S right? Churn backtest</h1>
<p>Anchors {span} ({len(anchors)} with a complete horizon; left out: {left_out}). On every
anchor the users inactive for at least {report["threshold_days"]} days were scored as the
nightly run would have scored them that day, and counted as <b>churned</b> when they had no
activity in any source during the next {report["horizon_days"]} days.
{model_text}</p>
{decision_tables(report)}
<h2>Pooled over all anchors</h2>
<table><tr><th>scorer</th><th>user-anchors</th><th>churned</th><th>AUC</th><th>Brier</th>
<th>calibration error</th></tr>{"".join(pooled_rows)}</table>
{_same_anchors(backtest)}
<p class="note"><b>How to read it.</b> <b>AUC</b>: the chance that a user who churned got a
higher score than one who came back (ties count half); 0.5 is a coin toss, 1 is a perfect
ranking. It is what matters when S only decides who is contacted first. <b>Brier</b>: the
mean squared difference between the score and the outcome (0 or 1); lower is better, and
always predicting the overall churn rate p scores p(1-p). <b>Calibration error</b>: the
user-weighted mean distance between the score and the observed churn rate of its bin; it is
what matters when a threshold such as S &gt; 0.7 is read as "70% likely to churn".
<b>days inactive</b> is no probability: only its AUC is meaningful.</p>
<div class="charts">
<img alt="ROC curves" src="data:image/png;base64,{pngs["roc"]}">
<img alt="Calibration curves" src="data:image/png;base64,{pngs["calibration"]}">
</div>
<p class="note">ROC: each curve sweeps a threshold from the highest score down; the further up
and left, the better the ranking. Calibration: one point per tenth of the score range, its
size the share of users in it; points on the diagonal mean the score is the churn
probability, points below it mean the score overstates the risk.</p>
<img alt="AUC per anchor" src="data:image/png;base64,{pngs["auc"]}">
<p class="note">A scorer that is right only some of the time shows here: its AUC per anchor
moves with the season or with changes of the product.</p>
<details><summary>Per anchor</summary>
<table><tr><th>anchor</th><th>scorer</th><th>users</th><th>churned</th><th>AUC</th>
<th>Brier</th></tr>{anchor_rows}</table></details>
</body></html>
"""
