"""Exceptions described for a log line without the data that caused them.

SQLAlchemy's statement errors carry the SQL and its bound parameters ("[parameters: ...]",
e.g. the hash of the API key being checked), and a driver's data error may quote a value
("invalid input syntax ...: \"...\""). The ingest service logs what failed, never with what.
"""

import psycopg
from sqlalchemy.exc import DBAPIError, StatementError

_MAX = 300


def describe(exc: BaseException) -> str:
    """``Class: reason`` with no SQL text, no bound parameters and no row data."""
    orig = exc.orig if isinstance(exc, StatementError) else exc
    outer = f"{type(exc).__name__} " if orig is not exc else ""
    if isinstance(orig, psycopg.Error):
        state = f" (sqlstate {orig.sqlstate})" if orig.sqlstate else ""
        if isinstance(orig, psycopg.OperationalError | psycopg.InterfaceError):
            # Connectivity: the message names the server and the failure, not data.
            first = str(orig).strip().split("\n", 1)[0][:_MAX]
            return f"{outer}{type(orig).__name__}{state}: {first}"
        return f"{outer}{type(orig).__name__}{state}"
    if isinstance(exc, StatementError | DBAPIError):
        return f"{type(exc).__name__} ({type(orig).__name__})"
    text = repr(exc)
    return text if len(text) <= _MAX else text[: _MAX - 3] + "..."
