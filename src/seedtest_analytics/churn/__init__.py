"""The churn backtest (optional extra): anchors, evaluation, report, training, commands."""
