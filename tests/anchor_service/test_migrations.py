"""Versioned migrations, on a real SQLite file and a real PostgreSQL server: a database written
by the 0.1.0 release (fixtures/release_0_1_0, made by that release's code) upgrades in place
with ``anchor-service db upgrade`` and loses nothing, its receipts still verify against the
chain it was anchored on; start-up refuses older and newer databases and creates empty ones
at the head; each revision has its own upgrade test."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any, Final

import pytest
from alembic.util import CommandError
from sqlalchemy import create_engine, inspect
from sqlalchemy.pool import NullPool

from anchor_service import migrations
from anchor_service import store as store_module
from anchor_service._database import SQL
from anchor_service.errors import AnchoredOn1xError, SchemaMismatchError, StoreError
from anchor_service.receipts import Receipts
from anchor_service.store import BatchState, NewCredential, StatusPosition, Store
from tests.postgres import PostgresServer
from verifier.credential import canonicalize, leaf_input, new_salt
from verifier.merkle import leaf_hash

RELEASE = Path(__file__).parent / "fixtures" / "release_0_1_0"
EXPECTED: dict[str, Any] = json.loads((RELEASE / "expected.json").read_text())
TABLE_ORDER = {"meta": "key", "issuers": "id", "tokens": "token_hash", "batches": "id",
               "credentials": "id", "batch_levels": "batch_id, level"}
BACKENDS = ["sqlite", "postgresql"]


# --------------------------------------------------------------------------- helpers

def _fresh(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "sqlite":
        return str(tmp_path / "fresh" / "service.sqlite3")
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.new_database()


def _release(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A copy of the release's database of this kind."""
    if kind == "sqlite":
        path = tmp_path / "release" / "service.sqlite3"
        path.parent.mkdir()
        shutil.copyfile(RELEASE / "service.sqlite3", path)
        return str(path)
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.restore(RELEASE / "service.pgdump.sql")


def _raw_rows(location: str, statement: str) -> list[tuple[Any, ...]]:
    """Rows read straight from the driver, bypassing the store."""
    if location.startswith("postgresql://"):
        import psycopg  # noqa: PLC0415 - PostgreSQL only

        with psycopg.connect(location) as connection:
            return [tuple(row) for row in connection.execute(statement).fetchall()]
    with sqlite3.connect(location) as connection:
        return connection.execute(statement).fetchall()


def _tables(location: str) -> dict[str, list[list[Any]]]:
    """Every row of the service's tables, as the fixture recorded them (bytes as 0x-hex)."""
    def value(v: Any) -> Any:
        return "0x" + bytes(v).hex() if isinstance(v, bytes | memoryview) else v

    return {table: [[value(v) for v in row] for row in _raw_rows(
        location, f"SELECT * FROM {table} ORDER BY {by}")]  # noqa: S608 - fixed names
        for table, by in TABLE_ORDER.items()}


def _db_upgrade(location: str) -> subprocess.CompletedProcess[str]:
    """``anchor-service db upgrade``, as an operator runs it."""
    url = location if location.startswith("postgresql://") else f"sqlite:///{location}"
    env = {**os.environ, "MICROCRED_DATABASE_URL": url}
    return subprocess.run([sys.executable, "-m", "anchor_service", "db", "upgrade"],
                          capture_output=True, text=True, timeout=120, env=env, check=False)


def _schema(location: str) -> dict[str, Any]:
    """The schema as SQLAlchemy's inspector reads it: every table's columns, keys,
    constraints and indexes."""
    if location.startswith("postgresql://"):
        import psycopg  # noqa: PLC0415 - PostgreSQL only

        engine = create_engine("postgresql+psycopg://", poolclass=NullPool,
                               creator=lambda: psycopg.connect(location))
    else:
        engine = create_engine("sqlite://", poolclass=NullPool,
                               creator=lambda: sqlite3.connect(location))
    try:
        found = inspect(engine)
        return {table: {
            "columns": [(c["name"], str(c["type"]), c["nullable"], c.get("default"))
                        for c in found.get_columns(table)],
            "primary key": found.get_pk_constraint(table)["constrained_columns"],
            "foreign keys": sorted((tuple(k["constrained_columns"]), k["referred_table"],
                                    tuple(k["referred_columns"]))
                                   for k in found.get_foreign_keys(table)),
            "unique": sorted(tuple(u["column_names"]) for u in found.get_unique_constraints(table)),
            "checks": sorted(c["sqltext"] for c in found.get_check_constraints(table)),
            "indexes": sorted((i["name"], tuple(str(c) for c in i["column_names"]),
                               sorted((k, str(v)) for k, v in
                                      i.get("dialect_options", {}).items()))
                              for i in found.get_indexes(table)),
        } for table in sorted(found.get_table_names())}
    finally:
        engine.dispose()


# Columns revision 0003 appends: issuers (signing_key, signing_suite), credentials
# (submitted_digest); and revision 0004: issuers (next_status_index), credentials
# (status_list, status_index).
_COLUMNS_0003: Final = {"issuers": 2, "credentials": 1}
_COLUMNS_0004: Final = {"issuers": 1, "credentials": 2}


def _without_0003_columns(tables: dict[str, list[list[Any]]]) -> dict[str, list[list[Any]]]:
    return {table: [row[:len(row) - _COLUMNS_0003.get(table, 0)] for row in rows]
            for table, rows in tables.items()}


def _without_0004_columns(tables: dict[str, list[list[Any]]]) -> dict[str, list[list[Any]]]:
    return {table: [row[:len(row) - _COLUMNS_0004.get(table, 0)] for row in rows]
            for table, rows in tables.items()}


def _without_new_columns(tables: dict[str, list[list[Any]]]) -> dict[str, list[list[Any]]]:
    return _without_0003_columns(_without_0004_columns(tables))


def _downgrade(location: str, to: str) -> None:
    """Alembic's downgrade to revision ``to``, on the connection the migrations use."""
    from alembic import command  # noqa: PLC0415

    engine = migrations._engine(location)
    config = migrations._config()
    try:
        with engine.connect() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, to)
    finally:
        engine.dispose()


def _dissolved(tables: dict[str, list[list[Any]]]) -> dict[str, list[list[Any]]]:
    """The release's rows as revision 0004 leaves them: built batches (and their tree levels)
    gone, their credentials waiting again (no batch, no leaf)."""
    built = {row[0] for row in tables["batches"] if row[4] == "built"}
    return {**tables,
            "batches": [row for row in tables["batches"] if row[0] not in built],
            "batch_levels": [row for row in tables["batch_levels"] if row[0] not in built],
            "credentials": [[*row[:7], None, None, *row[9:]] if row[7] in built else row
                            for row in tables["credentials"]]}


# ------------------------------------------------------------ the release's database

@pytest.mark.parametrize("kind", BACKENDS)
def test_start_up_refuses_a_release_database_until_it_is_upgraded(
        kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    location = _release(kind, tmp_path, request)
    with pytest.raises(SchemaMismatchError, match=r"0\.1\.0.*run `anchor-service db upgrade`"):
        Store(location)
    assert _tables(location) == EXPECTED[kind]["tables"]  # refusing changed nothing
    assert migrations.current(location) == migrations.RELEASE_0_1_0


@pytest.mark.parametrize("kind", BACKENDS)
def test_db_upgrade_keeps_every_credential_batch_and_token(
        kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    location = _release(kind, tmp_path, request)
    recorded = EXPECTED[kind]
    result = _db_upgrade(location)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == migrations.head()

    # Every row of every table is as the release left it; only the fence moved (revision 0002),
    # revisions 0003 and 0004 added their columns, and 0004 dissolved the batch that was built
    # but not sent (see their own tests).
    tables = _without_new_columns(_tables(location))
    assert tables["meta"] == [["schema_version", "2"]]
    expected = _dissolved(recorded["tables"])
    for table in TABLE_ORDER.keys() - {"meta"}:
        assert tables[table] == expected[table], table
    assert len(tables["credentials"]) == 13
    assert {row[4] for row in tables["batches"]} == {"anchored"}

    store = Store(location)
    try:
        for name, token in recorded["tokens"].items():
            identity = store.token_identity(token)
            assert identity is not None, name
            expected_issuer = None if name == "admin" else \
                next(i.id for i in store.issuers() if i.name == name)
            assert (identity.role, identity.issuer_id) == (
                "admin" if name == "admin" else "issuer", expected_issuer)

        # The release anchored on CredentialAnchor 1.x (status per batch): its credentials
        # keep their batch and leaf, have no status position, and their receipts are refused
        # with the reason; the waiting ones got positions and are batched with them.
        receipts = Receipts(store, chain_id=EXPECTED["chainId"], contract=EXPECTED["anchor"])
        anchored = {b.id for b in store.batches(states=[BatchState.ANCHORED])}
        refused = 0
        for public_id in recorded["credentials"]:
            record = store.credential(public_id)
            assert record is not None, public_id
            if record.batch_id in anchored:
                assert record.status is None
                with pytest.raises(AnchoredOn1xError, match=r"CredentialAnchor 1\.x"):
                    receipts.receipt(public_id)
                refused += 1
            else:
                assert record.status is not None
        assert refused == 10
        for issuer in store.issuers():
            batch = store.cut_batch(issuer.id, 100)
            assert batch is not None
            assert store.pending(issuer.id)[0] == 0
    finally:
        store.close()


@pytest.mark.parametrize("kind", BACKENDS)
def test_db_upgrade_twice_is_a_no_op(kind: str, tmp_path: Path,
                                     request: pytest.FixtureRequest) -> None:
    location = _release(kind, tmp_path, request)
    assert migrations.upgrade(location) == migrations.head()
    before = _tables(location), _schema(location)
    result = _db_upgrade(location)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == migrations.head()
    assert (_tables(location), _schema(location)) == before


@pytest.mark.parametrize("kind", BACKENDS)
def test_an_upgraded_release_database_has_the_schema_of_a_new_one(
        kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The migrations turn the release's tables into exactly what the store creates for an
    empty database (revision 0001 is the release's schema, not an approximation of it)."""
    upgraded = _release(kind, tmp_path, request)
    migrations.upgrade(upgraded)
    fresh = _fresh(kind, tmp_path, request)
    Store(fresh).close()
    assert _schema(upgraded) == _schema(fresh)
    assert set(_schema(fresh)) == {*TABLE_ORDER, "alembic_version"}


@pytest.mark.parametrize("kind", BACKENDS)
def test_every_statement_of_the_store_fits_the_upgraded_schema(
        kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The database planner accepts each statement the store makes (every table and column it
    names exists, with types the statement fits) on an upgraded release database."""
    location = _release(kind, tmp_path, request)
    migrations.upgrade(location)
    statements = [value for value in vars(store_module).values() if isinstance(value, SQL)]
    statements += [store_module._ids_by_digests(3),
                   store_module._batches_query(True, 2, True),
                   store_module._batches_query(False, 0, False)]
    assert len(statements) > 20
    with closing(Store(location)) as store:
        for statement in statements:
            explained = SQL(f"EXPLAIN {statement.sqlite}", f"EXPLAIN {statement.postgresql}",
                            statement.names)
            assert store._connection().execute(
                explained, dict.fromkeys(statement.names)).fetchall(), statement.sqlite


# ------------------------------------------------------------------- start-up rules

@pytest.mark.parametrize("kind", BACKENDS)
def test_an_empty_database_is_created_at_the_head(kind: str, tmp_path: Path,
                                                  request: pytest.FixtureRequest) -> None:
    location = _fresh(kind, tmp_path, request)
    assert migrations.current(location) is None
    store = Store(location)
    store.add_issuer("uni-a", entity_id=2, key_address="0x" + "aa" * 20, did="did:web:a")
    store.close()
    assert migrations.current(location) == migrations.head()
    assert _raw_rows(location, "SELECT value FROM meta") == [("2",)]
    Store(location).close()  # and opens again as it is


@pytest.mark.parametrize("kind", BACKENDS)
def test_start_up_refuses_an_older_revision(kind: str, tmp_path: Path,
                                            request: pytest.FixtureRequest) -> None:
    location = _fresh(kind, tmp_path, request)
    assert migrations.upgrade(location, to="0001") == "0001"
    with pytest.raises(SchemaMismatchError,
                       match=r"revision 0001, older .* run `anchor-service db upgrade`"):
        Store(location)
    with pytest.raises(SchemaMismatchError, match="anchor-service db upgrade"):
        migrations.check_current(location)
    assert migrations.upgrade(location) == migrations.head()
    migrations.check_current(location)
    Store(location).close()


@pytest.mark.parametrize("kind", BACKENDS)
def test_start_up_and_db_upgrade_refuse_a_newer_database(
        kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    location = _fresh(kind, tmp_path, request)
    Store(location).close()
    if kind == "sqlite":
        with sqlite3.connect(location) as connection:
            connection.execute("UPDATE alembic_version SET version_num = 'f00d'")
    else:
        import psycopg  # noqa: PLC0415 - PostgreSQL only

        with psycopg.connect(location) as connection:
            connection.execute("UPDATE alembic_version SET version_num = 'f00d'")
    newer = "revision f00d, which this release does not know .* upgrade the service"
    with pytest.raises(SchemaMismatchError, match=newer):
        Store(location)
    with pytest.raises(SchemaMismatchError, match=newer):
        migrations.upgrade(location)
    result = _db_upgrade(location)
    assert result.returncode == 1
    assert "this release of anchor-service is older than the database" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_older_and_newer_databases_with_the_command_to_run(
        tmp_path: Path) -> None:
    """``anchor-service serve`` exits non-zero with the message, no traceback."""
    deployment = tmp_path / "deployment.json"
    deployment.write_text(json.dumps(EXPECTED["deployment"]))
    release = tmp_path / "release.sqlite3"
    shutil.copyfile(RELEASE / "service.sqlite3", release)
    newer = tmp_path / "newer.sqlite3"
    Store(newer).close()
    with sqlite3.connect(newer) as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'f00d'")
    for database, message in ((release, "run `anchor-service db upgrade`"),
                              (newer, "upgrade the service")):
        env = {**os.environ, "MICROCRED_DATABASE_URL": f"sqlite:///{database}",
               "MICROCRED_DEPLOYMENT": str(deployment), "MICROCRED_RPC_URL": "http://127.0.0.1:9",
               "MICROCRED_KEYSTORE_DIR": str(tmp_path / "keys"), "MICROCRED_PORT": "0"}
        result = subprocess.run([sys.executable, "-m", "anchor_service", "serve"],
                                capture_output=True, text=True, timeout=120, env=env,
                                check=False)
        assert result.returncode == 1, result.stderr
        assert message in result.stderr
        assert "Traceback" not in result.stderr


def test_a_foreign_database_is_neither_opened_nor_adopted(tmp_path: Path) -> None:
    """Tables of the service's names without the release's version row are not a 0.1.0
    database: neither start-up nor the upgrade takes them over."""
    location = tmp_path / "other.sqlite3"
    with sqlite3.connect(location) as connection:
        connection.execute("CREATE TABLE issuers (x TEXT)")
    with pytest.raises(StoreError, match="not a database of anchor-service"):
        Store(location)
    with pytest.raises(StoreError, match="not a database of anchor-service"):
        migrations.upgrade(location)


@pytest.mark.parametrize("kind", BACKENDS)
def test_processes_opening_one_empty_database_at_once_all_succeed(
        kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Replicas starting together on an empty database: one creates it, the others wait for
    the schema lock and find it made."""
    location = _fresh(kind, tmp_path, request)
    if kind == "sqlite":
        Path(location).parent.mkdir(parents=True)
    code = ("from anchor_service.store import Store\n"
            f"Store({location!r}).close()\nprint('opened')\n")
    children = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for _ in range(4)]
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        assert out.strip() == "opened"
    assert migrations.current(location) == migrations.head()
    assert _raw_rows(location, "SELECT count(*) FROM alembic_version") == [(1,)]


# ------------------------------------------------------- one test for each revision

@pytest.mark.parametrize("kind", BACKENDS)
def test_revision_0002_fences_out_releases_before_migrations(
        kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """0002 moves the schema's version to alembic_version and sets meta.schema_version to 2,
    which 0.1.0 refuses to open; the data is untouched."""
    location = _release(kind, tmp_path, request)
    assert migrations.upgrade(location, to="0001") == "0001"
    assert _tables(location) == EXPECTED[kind]["tables"]  # 0001 adopts, changes nothing
    assert migrations.upgrade(location, to="0002") == "0002"
    assert _raw_rows(location, "SELECT key, value FROM meta") == [("schema_version", "2")]
    assert _raw_rows(location, "SELECT version_num FROM alembic_version") == [("0002",)]


@pytest.mark.parametrize("kind", BACKENDS)
def test_revision_0003_adds_signing_keys_and_submitted_digests(
        kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """0003 adds the issuers' signing key and suite (empty: they are accepted unsigned, as
    before) and the credentials' submitted digest: the digest itself for every stored
    credential (0.1.0 stored them as submitted), none for digest-only submissions. A database
    at 0002 upgrades with its data intact and the store works on it: a resubmitted release
    credential keeps its id, and a signed credential resubmitted with another proof keeps
    its first id and digest."""
    location = _release(kind, tmp_path, request)
    assert migrations.upgrade(location, to="0002") == "0002"
    before = _tables(location)
    assert migrations.upgrade(location, to="0003") == "0003"
    after = _tables(location)
    assert _without_0003_columns(after) == before
    assert [row[5:] for row in after["issuers"]] == [[None, None]] * len(after["issuers"])
    submitted = {row[0]: (row[3], row[5], row[-1]) for row in after["credentials"]}
    assert sum(content is None for _, content, _ in submitted.values()) == 2
    for digest, content, submitted_digest in submitted.values():
        assert submitted_digest == (None if content is None else digest)
    assert ("credentials_submitted", ("issuer_id", "submitted_digest")) in {
        index[:2] for index in _schema(location)["credentials"]["indexes"]}

    migrations.upgrade(location)  # the store reads the newest revision
    with closing(Store(location)) as store:
        issuer = next(i for i in store.issuers() if i.name == "uni-a")
        assert (issuer.signing_key, issuer.signing_suite) == (None, None)
        # A release credential sent again as it was: same id (found by its submitted digest).
        public_id, document = next(
            (public_id, document) for public_id, document in EXPECTED[kind]["credentials"].items()
            if store.credential(public_id) is not None
            and store.credential(public_id).issuer_id == issuer.id)  # type: ignore[union-attr]
        canonical = canonicalize(document)
        digest = hashlib.sha256(canonical).digest()
        (again,) = store.accept(issuer.id, [NewCredential(digest, new_salt(), canonical, digest)])
        assert (again.public_id, again.created, again.digest) == (public_id, False, digest)

        key = "z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
        updated = store.set_signing_key(issuer.id, key, "ecdsa-jcs-2019")
        assert (updated.signing_key, updated.signing_suite) == (key, "ecdsa-jcs-2019")
        assert store.issuer(issuer.id) == updated
        # The same submitted credential, signed twice (two proofs, two digests): one id, and
        # the first digest is the one kept.
        submitted_digest = hashlib.sha256(b"unsigned").digest()
        first, second = (NewCredential(hashlib.sha256(signed).digest(), new_salt(), signed,
                                       submitted_digest)
                         for signed in (b'{"proof":1}', b'{"proof":2}'))
        (one,) = store.accept(issuer.id, [first])
        (two,) = store.accept(issuer.id, [second])
        assert one.created
        assert not two.created
        assert (two.public_id, two.digest) == (one.public_id, first.digest)
        record = store.credential(one.public_id)
        assert record is not None
        assert record.content == b'{"proof":1}'


@pytest.mark.parametrize("kind", BACKENDS)
def test_revision_0004_gives_waiting_credentials_status_positions(
        kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """0004 adds each issuer's status counter and each credential's status position: the
    credentials waiting for a batch, and those of a batch built but not sent (dissolved: its
    leaves had no position), get positions 0, 1, ... per issuer in the order they were
    accepted; those anchored on 1.x keep none. The store then batches them with their
    positions in the leaves and allocates after them. Downgrading removes the columns."""
    location = _release(kind, tmp_path, request)
    assert migrations.upgrade(location, to="0003") == "0003"
    before = _tables(location)
    assert migrations.upgrade(location, to="0004") == "0004"
    after = _tables(location)
    assert _without_0004_columns(after) == _dissolved(before)
    positions = {row[1]: (row[2], row[-2], row[-1]) for row in after["credentials"]}
    batched = {row[1] for row in after["credentials"] if row[7] is not None}
    assert len(batched) == 10
    assert all(positions[public_id][1:] == (None, None) for public_id in batched)
    waiting = [row for row in after["credentials"] if row[1] not in batched]  # in id order
    by_issuer: dict[int, list[tuple[int, int]]] = {}
    for row in waiting:
        by_issuer.setdefault(row[2], []).append((row[-2], row[-1]))
    assert by_issuer == {1: [(0, 0), (0, 1)], 2: [(0, 0)]}
    assert {row[0]: row[-1] for row in after["issuers"]} == {1: 2, 2: 1}
    assert ("credentials_status_position", ("issuer_id", "status_list", "status_index")) in {
        index[:2] for index in _schema(location)["credentials"]["indexes"]}

    with closing(Store(location)) as store:
        uni_a = next(i for i in store.issuers() if i.name == "uni-a")
        assert store.next_status_index(uni_a.id) == 2
        (fresh,) = store.accept(uni_a.id, [NewCredential(b"\x07" * 32, new_salt())])
        record = store.credential(fresh.public_id)
        assert record is not None
        assert record.status == StatusPosition(0, 2)
        batch = store.cut_batch(uni_a.id, 100)
        assert batch is not None
        assert batch.size == 3
        tree = store.load_tree(batch.id)
        found = store.credentials([*positions, fresh.public_id]).values()
        in_batch = [r for r in found if r.batch_id == batch.id]
        assert len(in_batch) == 3
        for record in in_batch:
            assert record.status is not None
            assert tree.leaf_hash_at(record.leaf_index or 0) == leaf_hash(
                leaf_input(record.salt, record.digest, record.status.list, record.status.index))

    # That batch's leaves carry positions: going back to 0003 would invalidate its receipts.
    with pytest.raises(CommandError, match=r"3 credential\(s\) are in batches whose leaves carry "
                       r"status positions"):
        _downgrade(location, "0003")
    assert migrations.current(location) == "0004"


@pytest.mark.parametrize("kind", BACKENDS)
def test_revision_0004_downgrades_while_no_batch_has_positions(
        kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    location = _release(kind, tmp_path, request)
    assert migrations.upgrade(location, to="0003") == "0003"
    before = _tables(location)
    assert migrations.upgrade(location, to="0004") == "0004"
    _downgrade(location, "0003")
    assert migrations.current(location) == "0003"
    assert _tables(location)["issuers"] == before["issuers"]
    assert "status_list" not in {c[0] for c in _schema(location)["credentials"]["columns"]}


def _execute(location: str, statement: str) -> None:
    if location.startswith("postgresql://"):
        import psycopg  # noqa: PLC0415 - PostgreSQL only

        with psycopg.connect(location) as postgres:
            postgres.execute(statement)
        return
    with closing(sqlite3.connect(location)) as sqlite, sqlite:
        sqlite.execute(statement)


@pytest.mark.parametrize("kind", BACKENDS)
def test_revision_0004_refuses_a_database_with_sent_batches(
        kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """A batch sent on 1.x but not confirmed could be sent again after the upgrade, to the 2.x
    anchor, with leaves without positions: the upgrade says to drain first and changes
    nothing."""
    location = _release(kind, tmp_path, request)
    assert migrations.upgrade(location, to="0003") == "0003"
    _execute(location, "UPDATE batches SET state = 'sent' WHERE id = "
                       "(SELECT MIN(id) FROM batches WHERE state = 'anchored')")
    before = _tables(location)
    with pytest.raises(StoreError, match=r"1 batch\(es\) are sent but not yet anchored and "
                       r"confirmed: drain first: .*0\.1\.x service"):
        migrations.upgrade(location, to="0004")
    assert migrations.current(location) == "0003"
    assert _tables(location) == before
    result = _db_upgrade(location)
    assert result.returncode != 0
    assert "drain first" in result.stderr
    assert "Traceback" not in result.stderr
