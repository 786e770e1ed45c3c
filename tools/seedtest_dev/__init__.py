"""seedtest-dev: the development tools of seedtest-analytics (the demo, the embedded
PostgreSQL, synthetic data, the old jobs re-created, the benchmark).

They use the runtime package `seedtest_analytics`; the runtime never imports them, and the
Docker image does not contain them.
"""

__version__ = "0.1.0"
