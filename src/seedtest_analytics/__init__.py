"""seedtest-analytics: daily learning features, inactive students and their P/S scores."""

__version__ = "0.1.0"
