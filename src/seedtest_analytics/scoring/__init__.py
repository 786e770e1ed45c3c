"""Scoring students: the P and S formulas, the scoring inputs and the churn models."""
