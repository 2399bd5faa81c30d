"""Versioned migrations of the service's database (Alembic), shipped inside the package.

The revisions live in ``versions/``: 0001 is the schema of anchor-service 0.1.0, and each
later schema change is a revision of its own, with its own upgrade test. ``anchor-service db
upgrade`` runs :func:`upgrade`; :class:`anchor_service.store.Store` runs :func:`prepare`
whenever it opens a database, which applies this rule:

- an empty database (none of the service's tables) is created at the head revision, by
  running every migration: it has nothing to lose, and a first start needs no extra step;
- a database at the head revision is opened;
- a database at an older revision, or one written by 0.1.0 (which predates migrations: its
  tables and ``meta.schema_version = 1``, no ``alembic_version``), is refused with a
  :class:`~anchor_service.errors.SchemaMismatchError` that says to run
  ``anchor-service db upgrade`` (after stopping every process that uses it);
- a database at a revision this release does not know (made by a newer release) is refused.

Nothing here connects or reads settings at import time. Opening a store reads the revisions'
list (Alembic's script directory, once per process); SQLAlchemy's engine is made only when a
migration runs.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from anchor_service._database import SQL, Backend, first_line, open_backend, sqlite_path
from anchor_service.errors import SchemaMismatchError, StoreError

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

__all__ = ["check_current", "current", "ensure_current", "head", "prepare", "revisions",
           "upgrade"]

_HERE: Final = Path(__file__).resolve().parent
# Tables of 0.1.0 (revision 0001): a database holding any of them is not empty.
_SERVICE_TABLES: Final = frozenset(
    {"meta", "issuers", "tokens", "batches", "credentials", "batch_levels"})
_VERSION_TABLE: Final = "alembic_version"
_UPGRADE: Final = "run `anchor-service db upgrade`"
_NEWER: Final = "this release of anchor-service is older than the database; upgrade the service"
_READ_VERSION: Final = SQL(sqlite="SELECT version_num FROM alembic_version",
                           postgresql="SELECT version_num FROM alembic_version")
_READ_LEGACY_VERSION: Final = SQL(
    sqlite="SELECT value FROM meta WHERE key = 'schema_version'",
    postgresql="SELECT value FROM meta WHERE key = 'schema_version'")
# What current() reports for a database written by 0.1.0 before any upgrade.
RELEASE_0_1_0: Final = "0.1.0 (no alembic_version)"


def _config() -> Config:
    from alembic.config import Config  # noqa: PLC0415 - loaded only when migrating

    # Alembic announces each plugin it sets up at INFO; in the service's log that is noise.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    config = Config()
    config.set_main_option("script_location", str(_HERE))
    config.set_main_option("path_separator", "os")
    return config


@functools.cache
def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory  # noqa: PLC0415 - loaded only when needed

    return ScriptDirectory.from_config(_config())


def revisions() -> list[str]:
    """Every revision this release knows, oldest first."""
    return [script.revision for script in reversed(list(_scripts().walk_revisions()))]


def head() -> str:
    """The revision this release's store reads."""
    found = _scripts().get_current_head()
    if found is None:  # pragma: no cover - the package ships its revisions
        raise StoreError("the package has no migrations")
    return found


def _state(backend: Backend) -> str | None:
    """The database's revision, :data:`RELEASE_0_1_0`, or None when it is empty."""
    tables = backend.table_names()
    db = backend.connection()
    if _VERSION_TABLE in tables:
        rows = db.execute(_READ_VERSION).fetchall()
        if len(rows) == 1:
            return str(rows[0][0])
        if rows:
            raise StoreError(f"{backend} records {len(rows)} schema revisions; this release "
                             "has one line of migrations")
    if not tables & _SERVICE_TABLES:
        return None
    if "meta" in tables:
        row = db.execute(_READ_LEGACY_VERSION).fetchone()
        if row is not None and row[0] == "1":
            return RELEASE_0_1_0
    raise StoreError(f"{backend} holds tables but no schema revision: it is not a database of "
                     "anchor-service")


def _check(backend: Backend, state: str | None) -> None:
    wanted = head()
    if state == wanted:
        return
    if state == RELEASE_0_1_0:
        raise SchemaMismatchError(
            f"{backend} was written by anchor-service 0.1.0 and has not been migrated; this "
            f"release reads schema revision {wanted}: stop the service and {_UPGRADE}")
    if state is None:
        raise SchemaMismatchError(f"{backend} is empty; this release reads schema revision "
                                  f"{wanted}: {_UPGRADE}")
    if state in revisions():
        raise SchemaMismatchError(
            f"{backend} is at schema revision {state}, older than the revision {wanted} this "
            f"release reads: stop the service and {_UPGRADE}")
    raise SchemaMismatchError(f"{backend} is at schema revision {state}, which this release "
                              f"does not know (its newest is {wanted}): {_NEWER}")


def prepare(backend: Backend, location: Path | str) -> None:
    """What the store runs when it opens ``backend`` (at ``location``): create an empty
    database at the head revision, accept one at the head, refuse any other with a
    :class:`SchemaMismatchError` (see the module's rule)."""
    state = _state(backend)
    if state is None:
        upgrade(location)  # serialised with any other process doing the same
        state = _state(backend)
    _check(backend, state)


def ensure_current(location: Path | str) -> None:
    """:func:`prepare` on the database at ``location``: what ``anchor-service serve`` runs
    before it starts, so that a refusal is a message and an exit code rather than a failed
    application start-up."""
    backend = open_backend(location, pool_size=1)
    try:
        prepare(backend, location)
    finally:
        backend.close()


def current(location: Path | str) -> str | None:
    """The database's revision; :data:`RELEASE_0_1_0` for a database written by 0.1.0 and not
    migrated yet; None for an empty one, or a SQLite file that does not exist (which is not
    created: asking about a mistyped path leaves nothing behind)."""
    path = sqlite_path(location)
    if path is not None and not path.exists():
        return None
    backend = open_backend(location, pool_size=1)
    try:
        return _state(backend)
    finally:
        backend.close()


def check_current(location: Path | str) -> None:
    """Raise :class:`SchemaMismatchError` unless the database is at the revision this release
    reads (an empty database is not: :func:`prepare` creates it, this only checks)."""
    backend = open_backend(location, pool_size=1)
    try:
        _check(backend, _state(backend))
    finally:
        backend.close()


def upgrade(location: Path | str, to: str = "head") -> str:
    """Apply every migration the database at ``location`` lacks, up to ``to`` (the head by
    default; a revision for the tests of one migration), in one transaction, and return the
    revision reached. A database written by 0.1.0 is adopted as revision 0001 first. Raises
    :class:`SchemaMismatchError` for a database newer than this release, StoreError when the
    database cannot be reached or a migration fails."""
    from alembic import command  # noqa: PLC0415 - loaded only when migrating
    from alembic.util import CommandError  # noqa: PLC0415
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415

    backend = open_backend(location, pool_size=1)  # SQLite: creates the file owner-only
    name = str(backend)  # without the password a URL may carry
    try:
        state = _state(backend)
        if state not in (None, RELEASE_0_1_0, *revisions()):
            _check(backend, state)  # a newer database: say so rather than fail in Alembic
    finally:
        backend.close()
    engine = _engine(location)
    config = _config()
    try:
        with engine.connect() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, to)
    except (SQLAlchemyError, CommandError) as exc:
        raise StoreError(f"migrating {name} failed: {first_line(exc)}") from None
    finally:
        engine.dispose()
    return head() if to == "head" else to


def _engine(location: Path | str) -> Any:
    """A SQLAlchemy engine over the same driver connection the store makes (the location is
    handed to sqlite3 or to libpq unchanged), without a pool."""
    from sqlalchemy import create_engine, event  # noqa: PLC0415
    from sqlalchemy.pool import NullPool  # noqa: PLC0415

    path = sqlite_path(location)
    if path is None:
        import psycopg  # noqa: PLC0415 - the postgres extra; open_backend checked it

        url = str(location)
        return create_engine("postgresql+psycopg://", poolclass=NullPool,
                             creator=lambda: psycopg.connect(url))
    import sqlite3  # noqa: PLC0415

    engine = create_engine("sqlite://", poolclass=NullPool,
                           creator=lambda: sqlite3.connect(path, timeout=30.0))

    # pysqlite's own transaction handling runs DDL outside transactions; take it over, and
    # begin with IMMEDIATE so that a second process migrating at once waits for the first.
    @event.listens_for(engine, "connect")
    def _autocommit(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
