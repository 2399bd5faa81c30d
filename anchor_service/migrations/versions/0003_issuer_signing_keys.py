"""Issuer signing keys, and the digest of a credential as submitted.

Revision ID: 0003
Revises: 0002

- ``issuers.signing_key``: the issuer's current signing key as ``publicKeyMultibase`` text
  (the private key is in an encrypted file of the keystore folder, never here); NULL for an
  issuer whose credentials are accepted unsigned.
- ``issuers.signing_suite``: the issuer's Data Integrity suite; NULL means the service's
  default (``eddsa-jcs-2022``).
- ``credentials.submitted_digest``: SHA-256 of the canonical credential as submitted, before
  the service signed it. Signing the same credential twice makes two proofs (their
  ``created`` differ), so two digests; this column, unique per issuer, keeps the first id.
  Credentials stored before this revision were stored as submitted (unsigned), so theirs is
  their digest; digest-only submissions have none.
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    blob = "BYTEA" if bind.dialect.name == "postgresql" else "BLOB"
    op.execute("ALTER TABLE issuers ADD COLUMN signing_key TEXT")
    op.execute("ALTER TABLE issuers ADD COLUMN signing_suite TEXT")
    op.execute(f"ALTER TABLE credentials ADD COLUMN submitted_digest {blob}")
    op.execute("UPDATE credentials SET submitted_digest = digest WHERE content IS NOT NULL")
    # Partial: digest-only submissions (NULL) take no room in it.
    op.execute("CREATE UNIQUE INDEX credentials_submitted ON credentials "
               "(issuer_id, submitted_digest) WHERE submitted_digest IS NOT NULL")


def downgrade() -> None:
    op.execute("DROP INDEX credentials_submitted")
    op.execute("ALTER TABLE credentials DROP COLUMN submitted_digest")
    op.execute("ALTER TABLE issuers DROP COLUMN signing_suite")
    op.execute("ALTER TABLE issuers DROP COLUMN signing_key")
