"""Alembic's environment for the service's migrations: run on the connection that
:func:`anchor_service.migrations.upgrade` opened (never from a URL or an ini file of its own),
in one transaction that holds the schema lock, so that two processes migrating one database
at once take turns and the second finds the work done."""

from __future__ import annotations

from alembic import context

from anchor_service._database import SCHEMA_LOCK

connection = context.config.attributes["connection"]
# Both databases run DDL inside transactions: a migration that fails part-way leaves nothing.
context.configure(connection=connection, transactional_ddl=True)
with context.begin_transaction():
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK})")
    # (SQLite: the transaction began with BEGIN IMMEDIATE, which already excludes writers.)
    context.run_migrations()
