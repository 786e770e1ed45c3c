"""Scoring students: the P and S formulas (applied to the scoring inputs), the outreach
holdout and the churn models."""
