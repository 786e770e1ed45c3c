"""The application database: connections, statement timeouts, the run lock, the run
history, the application schema (init-db) and the weekly_kpi write."""
