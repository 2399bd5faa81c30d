"""Alembic's ``alembic_version`` holds the schema's version; ``meta.schema_version`` becomes a
fence for releases that predate migrations.

Revision ID: 0002
Revises: 0001

anchor-service 0.1.0 reads ``meta.schema_version`` at start-up and refuses to open a database
where it is not 1. Setting it to 2 here keeps a 0.1.0 process started by mistake against an
upgraded database from writing to it; later releases ignore the row (they read
``alembic_version``), and later revisions leave it at 2.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")


def downgrade() -> None:
    op.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
