"""The monitor's database plumbing that is not about news: URLs, retries after a lost connection, upserts.

Several monitor workers may share one PostgreSQL database, each following its own files. What keeps that
exactly-once is in monitor.py (items and the stream's offset in one transaction, the offset moved only from the
value this worker last saw); this module makes the same code survive a dropped connection: a transaction that
failed because the server went away is retried with backoff for `db_retry_seconds`, then the worker stops with
exit 2. A retried transaction is safe: it either committed (the offset check then finds it stored) or did not.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa

from fmkit.errors import FmkitError

T = TypeVar("T")


def shown_url(url: str) -> str:
    """The URL with its password replaced by ***, for messages and logs."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url if "@" not in url else "***@" + url.rsplit("@", 1)[1]


def engine_options(url: str) -> dict[str, Any]:
    """create_engine options: a server database checks pooled connections before use (a restarted server left
    them dead) and gives up connecting after 10 s instead of hanging on an unreachable host."""
    if sa.engine.make_url(url).get_backend_name() == "sqlite":
        return {}
    return {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}


class StreamTaken(FmkitError):
    """The stream's stored offset moved under this worker: another worker follows the same file."""


def connection_lost(exc: BaseException, engine: sa.Engine) -> bool:
    """True for errors a reconnect can fix (server restarted, backend terminated, network); SQLite's
    OperationalErrors are about the file or the schema, so they are not retried."""
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    return engine.dialect.name != "sqlite" and isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError)


def retrying(engine: sa.Engine, what: str, action: Callable[[], T], window_s: float, log: Any) -> T:
    """Run `action` (one whole transaction), retrying with exponential backoff while the connection is lost.

    After `window_s` seconds without success: FmkitError (exit 2) naming the database with its password hidden.
    """
    deadline: float | None = None
    delay = 0.25
    while True:
        try:
            return action()
        except sa.exc.IntegrityError:
            # A unique key (stream, offset) or a stream's first progress row: two workers raced on one stream.
            raise StreamTaken(f"a unique key was violated while {what}: another worker stores the same stream. "
                              "Give each worker its own files (--partition K/N).") from None
        except sa.exc.DBAPIError as exc:
            if not connection_lost(exc, engine):
                raise
            now = time.monotonic()
            deadline = deadline if deadline is not None else now + window_s
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
            if now >= deadline:
                raise FmkitError(
                    f"lost the database {shown_url(str(engine.url))} while {what} and it did not come back within "
                    f"{window_s:g}s ({reason}). Nothing is lost: what was stored stays, and the monitor re-reads the "
                    "rest from the last stored offset when restarted. Raise db_retry_seconds in monitor.json to "
                    "wait longer.") from None
            print(f"warning: database connection lost while {what} ({reason}); retrying in {delay:.2g}s",
                  file=log, flush=True)
            time.sleep(min(delay, max(deadline - now, 0.0)))
            delay = min(delay * 2, 5.0)


def upsert_value(conn: sa.Connection, table: sa.Table, key: dict[str, Any], column: str, value: Any,
                 keep_max: bool = False) -> None:
    """INSERT the row or UPDATE its `column` in one statement (ON CONFLICT on SQLite and PostgreSQL), so two
    workers creating the same row do not collide; `keep_max` never lowers the stored value."""
    dialect = conn.dialect.name
    if dialect in ("postgresql", "sqlite"):
        from sqlalchemy.dialects import postgresql, sqlite

        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt: Any = insert(table).values(**key, **{column: value})
        new: Any = stmt.excluded[column]
        if keep_max:
            new = sa.case((table.c[column] > new, table.c[column]), else_=new)
        conn.execute(stmt.on_conflict_do_update(index_elements=list(key), set_={column: new}))
        return
    where = sa.and_(*(table.c[k] == v for k, v in key.items()))
    if keep_max:
        where = sa.and_(where, table.c[column] < value)
    updated = conn.execute(table.update().where(where).values(**{column: value}))
    exists = updated.rowcount or conn.execute(sa.select(sa.func.count()).select_from(table).where(
        sa.and_(*(table.c[k] == v for k, v in key.items())))).scalar()
    if not exists:
        conn.execute(table.insert().values(**key, **{column: value}))
