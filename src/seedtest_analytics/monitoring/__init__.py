"""Watching the nights: the run-history status command and the Pushgateway metrics."""
