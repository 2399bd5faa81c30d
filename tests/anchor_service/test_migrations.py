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
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import pytest
from sqlalchemy import create_engine, inspect
from sqlalchemy.pool import NullPool

from anchor_service import migrations
from anchor_service import store as store_module
from anchor_service._database import SQL
from anchor_service.chain import Deployment
from anchor_service.errors import SchemaMismatchError, StoreError
from anchor_service.pipeline import BatchPolicy, Pipeline
from anchor_service.receipts import Receipts
from anchor_service.store import BatchState, NewCredential, Store
from localchain import AnvilChain
from tests.postgres import PostgresServer
from verifier.chain import JsonRpcChainReader
from verifier.credential import canonicalize, new_salt
from verifier.trust import TrustConfig, TrustedDeployment
from verifier.verify import CheckStatus, VerificationReport, verify

RELEASE = Path(__file__).parent / "fixtures" / "release_0_1_0"
EXPECTED: dict[str, Any] = json.loads((RELEASE / "expected.json").read_text())
TABLE_ORDER = {"meta": "key", "issuers": "id", "tokens": "token_hash", "batches": "id",
               "credentials": "id", "batch_levels": "batch_id, level"}
DURING = datetime(2027, 6, 1, tzinfo=UTC)  # inside the fixture credentials' validity
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
# (submitted_digest).
_COLUMNS_0003: Final = {"issuers": 2, "credentials": 1}


def _without_0003_columns(tables: dict[str, list[list[Any]]]) -> dict[str, list[list[Any]]]:
    return {table: [row[:len(row) - _COLUMNS_0003.get(table, 0)] for row in rows]
            for table, rows in tables.items()}


def _failed(report: VerificationReport) -> list[tuple[str, str]]:
    return [(c.name, c.detail) for c in report.checks if c.status is not CheckStatus.PASSED]


@pytest.fixture(scope="module")
def release_chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnvilChain]:
    """anvil started from the state the fixtures were anchored on (same chain id and keys)."""
    state = tmp_path_factory.mktemp("anvil") / "anvil-state.json"
    shutil.copyfile(RELEASE / "anvil-state.json", state)
    chain = AnvilChain.start(state_path=state, chain_id=EXPECTED["chainId"],
                             mnemonic=EXPECTED["mnemonic"])
    try:
        yield chain
    finally:
        chain.close()


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
def test_db_upgrade_keeps_every_credential_batch_receipt_and_token(
        kind: str, tmp_path: Path, request: pytest.FixtureRequest,
        release_chain: AnvilChain) -> None:
    location = _release(kind, tmp_path, request)
    recorded = EXPECTED[kind]
    result = _db_upgrade(location)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == migrations.head()

    # Every row of every table is as the release left it; only the fence moved (revision 0002),
    # and revision 0003's columns were added (see its own test).
    tables = _without_0003_columns(_tables(location))
    assert tables["meta"] == [["schema_version", "2"]]
    for table in TABLE_ORDER.keys() - {"meta"}:
        assert tables[table] == recorded["tables"][table], table
    assert len(tables["credentials"]) == 13
    assert {row[4] for row in tables["batches"]} == {"anchored", "built"}

    store = Store(location)
    try:
        for name, token in recorded["tokens"].items():
            identity = store.token_identity(token)
            assert identity is not None, name
            expected_issuer = None if name == "admin" else \
                next(i.id for i in store.issuers() if i.name == name)
            assert (identity.role, identity.issuer_id) == (
                "admin" if name == "admin" else "issuer", expected_issuer)

        # Every receipt the release could serve still verifies, with every check, on the chain
        # the release anchored it on. (0.1.0 did not sign credentials: they verify as unsigned
        # ones, with the verifier's opt-out.)
        trust = TrustConfig(deployments=(TrustedDeployment(
            chain_id=EXPECTED["chainId"], anchor=EXPECTED["anchor"],
            registry=EXPECTED["registry"]),), require_signature=False)
        receipts = Receipts(store, chain_id=EXPECTED["chainId"], contract=EXPECTED["anchor"])
        reader = JsonRpcChainReader(release_chain.w3)
        anchored = {b.id for b in store.batches(states=[BatchState.ANCHORED])}
        verified = 0
        for public_id, document in recorded["credentials"].items():
            record = store.credential(public_id)
            assert record is not None, public_id
            if record.batch_id not in anchored:
                continue
            report = verify(document, receipts.receipt(public_id), trust=trust, reader=reader,
                            as_of=DURING)
            assert report.valid, (public_id, _failed(report))
            verified += 1
        assert verified == 10

        # The upgraded database keeps working: the built batch and the waiting credentials are
        # anchored by the pipeline, and their receipts verify too.
        keys = release_chain.accounts[2:4]  # derived from the fixture's mnemonic
        by_name = {i.name: i for i in store.issuers()}
        assert [by_name["uni-a"].key_address, by_name["uni-b"].key_address] == \
            [k.address for k in keys]
        deployment = Deployment.from_json(json.dumps(EXPECTED["deployment"]))
        pipeline = Pipeline(store, release_chain.w3, deployment,
                            {by_name["uni-a"].id: keys[0], by_name["uni-b"].id: keys[1]},
                            BatchPolicy(max_size=100, max_age=0))
        pipeline.run_once()
        pipeline.run_once()
        assert {b.state for b in store.batches()} == {BatchState.ANCHORED}
        reader = JsonRpcChainReader(release_chain.w3)  # (a reader caches the head it last saw)
        for public_id, document in recorded["credentials"].items():
            report = verify(document, receipts.receipt(public_id), trust=trust, reader=reader,
                            as_of=DURING)
            assert report.valid, (public_id, _failed(report))
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
