"""The two kinds of failure the CLI turns into exit codes."""


class UsageError(Exception):
    """Bad usage or configuration: the run stops before anything is written (exit 2)."""


class RunError(Exception):
    """A failure at run time; whatever was open is rolled back (exit 1)."""


class ConnectError(RunError):
    """The database could not be reached at all (exit 1; nothing was written)."""


class ReportedError(RunError):
    """A run-time failure whose lines were logged already (exit 1)."""
