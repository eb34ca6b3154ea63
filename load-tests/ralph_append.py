"""Runs ralph-malph's CLI with its filesystem LRS backend writing in APPEND mode.

ralph's `fs` backend writes every POST with operation type CREATE, which refuses to write to a
statements file that already exists: the first POST succeeds and every later one fails with
500 ("already exists and overwrite is not allowed"). Appending is what an LRS must do, so
`load-tests/run` starts ralph through this wrapper, which sets the backend's default
operation type to APPEND before the server starts (same process: uvicorn imports the app
here). Nothing else changes.
"""

from ralph.backends.data.base import BaseOperationType
from ralph.backends.lrs.fs import FSLRSBackend

FSLRSBackend.default_operation_type = BaseOperationType.APPEND

from ralph.cli import cli  # noqa: E402

if __name__ == "__main__":
    cli()
