"""Status list positions: per-issuer W3C Bitstring Status List indices.

Revision ID: 0004
Revises: 0003

- ``issuers.next_status_index``: the issuer's next global status position ``g``, allocated in
  blocks when credentials are accepted; a credential at ``g`` is entry ``g % 131072`` of list
  ``g // 131072``. Positions allocated to a request that then failed are never reused (a
  harmless gap: nothing is anchored at them).
- ``credentials.status_list`` and ``credentials.status_index``: the credential's position,
  bound in its Merkle leaf and carried by its receipt. NULL only for credentials already sent
  or anchored (on a CredentialAnchor 1.x deployment, whose status was per batch) before this
  revision: their receipts and bundles are refused (``anchored_on_1x``).
- A unique index keeps two credentials of one issuer from ever sharing a position.

A database with batches sent but not yet confirmed is refused (drain them with the 0.1.x
service first): such a batch could be sent again, after the upgrade, to the 2.x anchor with
leaves that have no position. The downgrade is refused once a batch has been built with
positions in its leaves.

Batches that were built but not yet sent are dissolved: their leaves have no position, so
their credentials wait again, get positions like every other waiting credential (in the
order they were accepted), and are batched anew.
"""

from __future__ import annotations

from alembic import op
from alembic.util import CommandError
from sqlalchemy import text

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_LIST_SIZE = 131072  # CredentialAnchor.STATUS_LIST_SIZE (fixed here: a revision is frozen)
_CHUNK = 1000


def upgrade() -> None:
    bind = op.get_bind()
    (sent,) = bind.execute(text("SELECT COUNT(*) FROM batches WHERE state = 'sent'")).one()
    if sent:
        # A sent batch's transaction may still be dropped or replaced: the service of this
        # revision would then send its leaves (without status positions) to the configured,
        # 2.x, anchor, where they read as positions they are not.
        raise CommandError(
            f"{sent} batch(es) are sent but not yet anchored and confirmed: drain first: let "
            "the pipeline of the 0.1.x service finish them (run it until no batch is in state "
            "sent: GET /v1/batches), stop it, then upgrade; nothing was changed")
    big = "BIGINT" if bind.dialect.name == "postgresql" else "INTEGER"
    op.execute(f"ALTER TABLE issuers ADD COLUMN next_status_index {big} NOT NULL DEFAULT 0")
    op.execute(f"ALTER TABLE credentials ADD COLUMN status_list {big}")
    op.execute(f"ALTER TABLE credentials ADD COLUMN status_index {big}")
    built = "SELECT id FROM batches WHERE state = 'built'"
    op.execute(f"DELETE FROM batch_levels WHERE batch_id IN ({built})")  # noqa: S608 - fixed
    op.execute(f"UPDATE credentials SET batch_id = NULL, leaf_index = NULL "  # noqa: S608
               f"WHERE batch_id IN ({built})")
    op.execute("DELETE FROM batches WHERE state = 'built'")
    rows = bind.execute(text("SELECT id, issuer_id FROM credentials WHERE batch_id IS NULL "
                             "ORDER BY issuer_id, id")).fetchall()
    counts: dict[int, int] = {}
    updates = []
    for credential_id, issuer_id in rows:
        position = counts.get(issuer_id, 0)
        counts[issuer_id] = position + 1
        updates.append({"id": credential_id, "list": position // _LIST_SIZE,
                        "index": position % _LIST_SIZE})
    place = text("UPDATE credentials SET status_list = :list, status_index = :index "
                 "WHERE id = :id")
    for start in range(0, len(updates), _CHUNK):
        bind.execute(place, updates[start:start + _CHUNK])
    if counts:
        bind.execute(text("UPDATE issuers SET next_status_index = :next WHERE id = :id"),
                     [{"id": issuer_id, "next": count} for issuer_id, count in counts.items()])
    op.execute("CREATE UNIQUE INDEX credentials_status_position ON credentials "
               "(issuer_id, status_list, status_index) WHERE status_list IS NOT NULL")


def downgrade() -> None:
    bind = op.get_bind()
    (placed,) = bind.execute(text("SELECT COUNT(*) FROM credentials WHERE batch_id IS NOT NULL "
                                  "AND status_list IS NOT NULL")).one()
    if placed:
        # Their batches' leaves bind their status positions: without the positions, the
        # receipts a 0.1.x service would serve for them match neither the stored tree nor
        # the anchored root.
        raise CommandError(
            f"{placed} credential(s) are in batches whose leaves carry status positions "
            "(built since this revision): downgrading would make their receipts invalid; "
            "refused, nothing was changed")
    op.execute("DROP INDEX credentials_status_position")
    op.execute("ALTER TABLE credentials DROP COLUMN status_index")
    op.execute("ALTER TABLE credentials DROP COLUMN status_list")
    op.execute("ALTER TABLE issuers DROP COLUMN next_status_index")
