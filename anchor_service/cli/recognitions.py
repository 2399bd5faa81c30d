"""``anchor-service registry recognise|withdraw-recognition|recognitions``: an entity's
recognitions of other entities' credentials (:mod:`anchor_service.recognitions`).

``--as ENTITY`` names the recognising entity: its id, its DID, or the name of an issuer in the
service's database (``--config`` or MICROCRED_DATABASE_URL; with neither, a name is refused,
exit 2, and no database is opened or created). The signer (``--keystore`` or
MICROCRED_PRIVATE_KEY) must be one of that entity's own trusted anchoring keys: the registry
refuses its accreditor's and root administrators' own keys (they can add a key to the entity,
a public ``KeyAdded`` event, and act with that, as for anchoring). A refusal is reported in
words, exit code 1; bad input exits 2.

Whenever the service's database is configured (``--config`` or MICROCRED_DATABASE_URL),
``recognise`` and ``withdraw-recognition`` signed with the anchoring key of an issuer the
service serves hold that issuer's sending lease while they send, however ``--as`` names the
entity, as the service's pipeline and routes do, so that their nonces do not clash (a round in
progress is waited for at most 10 s, then exit 1 "busy"). With no database configured, ``--as``
takes only an id or a DID and the commands cannot know of the service, so they take no lease:
other ``registry`` commands never take it (README, "Contracts and administration")."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anchor_service.cli._common import note
from verifier.contract_types import OPEN_UNTIL, SCOPES, Recognition, scope_names, scope_of
from verifier.times import iso_seconds

if TYPE_CHECKING:
    from web3.contract import Contract

    from anchor_service.chain import Transactor
    from anchor_service.settings import CommandSettings

__all__ = ["register_recognition_commands"]

def register_recognition_commands(sub: Any, with_deployment: argparse.ArgumentParser) -> None:
    """Add the recognition subcommands to ``registry``'s subparsers."""
    from anchor_service.cli.registry import chain_time, run  # noqa: PLC0415 - no cycle at import

    entity = argparse.ArgumentParser(add_help=False)
    entity.add_argument("--as", dest="as_entity", required=True, metavar="ENTITY",
                        help="the recognising entity: its id, DID, or the name of an issuer in "
                        "the service's database; the signer must be one of its own anchoring "
                        "keys")
    entity.add_argument("--config", type=Path, help="a .env-style file of MICROCRED_* settings "
                        "(the service's database: for an issuer named by --as, and to send "
                        "under a served issuer's sending lease when its key signs)")

    summary = ("record that an entity recognises another entity's credentials (or, for a "
               "body, those of every entity below it) of the given kinds")
    cmd = sub.add_parser("recognise", parents=[with_deployment, entity], help=summary,
                         description=summary[0].upper() + summary[1:] + ". Times are unix "
                         "seconds or ISO 8601 with a time zone; they are about the "
                         "credentials' issuance (anchoring) time.")
    cmd.add_argument("--subject", required=True, metavar="DID|ID",
                     help="the recognised entity: its DID or id")
    cmd.add_argument("--kind", action="append", required=True, choices=list(SCOPES),
                     help="a kind recognised (repeat for several)")
    cmd.add_argument("--from", dest="valid_from", type=chain_time, default=0, metavar="TIME",
                     help="credentials issued from this time on (default: any time)")
    cmd.add_argument("--until", dest="valid_until", type=chain_time, default=0, metavar="TIME",
                     help="credentials issued before this time (default: no end)")
    cmd.add_argument("--json", action="store_true", help="print the recognition as JSON")
    cmd.set_defaults(handler=run, action=_recognise)

    summary = ("withdraw a recognition: credentials issued from the next second on are no "
               "longer recognised by it")
    cmd = sub.add_parser("withdraw-recognition", parents=[with_deployment, entity],
                         help=summary, description=summary[0].upper() + summary[1:] + ".")
    cmd.add_argument("recognition", type=int, metavar="ID", help="the recognition's id")
    cmd.add_argument("--json", action="store_true", help="print the recognition as JSON")
    cmd.set_defaults(handler=run, action=_withdraw)

    summary = "list an entity's recognitions, withdrawn ones included"
    cmd = sub.add_parser("recognitions", parents=[with_deployment, entity], help=summary,
                         description=summary[0].upper() + summary[1:] + ".")
    cmd.add_argument("--subject", metavar="DID|ID", help="only those of this entity")
    cmd.add_argument("--json", action="store_true", help="as JSON")
    cmd.set_defaults(handler=run, action=_list)


def _describe(item: Recognition) -> str:
    """One line: id, entities, kinds, window, recorded and withdrawn times."""
    start = "any time" if item.valid_from == 0 else iso_seconds(item.valid_from)
    end = "open" if item.valid_until == OPEN_UNTIL else iso_seconds(item.valid_until)
    withdrawn = (f"withdrawn from {iso_seconds(item.withdrawn_at)}" if item.withdrawn_at
                 else "active")
    return (f"recognition {item.id}: entity {item.recogniser_id} recognises entity "
            f"{item.subject_id} for {','.join(scope_names(item.scope))}; issued from "
            f"{start} until {end}; recorded {iso_seconds(item.recorded_at)}; {withdrawn}")


def _recogniser(args: argparse.Namespace, registry: Contract) -> int:
    """The entity ``--as`` names: an id or a DID, else an issuer of the service's database."""
    from anchor_service.recognitions import resolve_entity  # noqa: PLC0415 - needs web3

    reference: str = args.as_entity
    if reference.strip().isdigit() or reference.strip().startswith("did:"):
        return resolve_entity(registry, reference)
    database_url = _database_url(args)
    if database_url is None:
        # Opening the default URL would create and migrate ./data/service.sqlite3 only to
        # answer "not an issuer", and a name found there would be sent without a lease.
        raise ValueError(f"--as {reference!r:.80}: an issuer's name needs the service's "
                         "database (--config or MICROCRED_DATABASE_URL); none is configured, "
                         "so give the entity's id or DID")
    from anchor_service.store import Store  # noqa: PLC0415

    store = Store(database_url, pool_size=2)
    try:
        issuer = store.issuer_named(reference.strip())
    finally:
        store.close()
    if issuer is None:
        raise ValueError(f"--as {reference!r:.80}: not an entity id, a DID, or an issuer in "
                         "the service's database")
    return issuer.entity_id


def _database_url(args: argparse.Namespace) -> str | None:
    """The service's database URL when one is configured (``--config``, else
    MICROCRED_DATABASE_URL in the environment); None when neither is, rather than the
    service's default, which would create a database in the working directory."""
    from anchor_service.settings import ServiceSettings  # noqa: PLC0415

    settings = ServiceSettings(_env_file=args.config)
    # A value read from the environment or the file is "set"; the default is not.
    if args.config is None and "database_url" not in settings.model_fields_set:
        return None
    url: str = settings.database_url
    return url


@contextmanager
def _sending_lease(args: argparse.Namespace, tx: Transactor) -> Iterator[bool]:
    """With the service's database configured (:func:`_database_url`): while ``tx``'s key is
    the anchoring key of an issuer in it, hold that issuer's sending lease (the pipeline's);
    yields False when another process held it for
    :data:`~anchor_service.store.LEASE_WAIT` seconds. With no database configured, or for
    another key, yields True at once."""
    database_url = _database_url(args)
    if database_url is None:
        yield True
        return
    from anchor_service.store import Store  # noqa: PLC0415

    store = Store(database_url, pool_size=2)
    try:
        served = [issuer for issuer in store.issuers()
                  if issuer.key_address.lower() == tx.address.lower()]
        if not served:
            yield True
            return
        with store.waited_issuer_lease(served[0].id) as held:
            yield held
    finally:
        store.close()


def _busy(tx: Transactor) -> int:
    note(f"busy: the service is sending with {tx.address} now (anchoring); nothing was sent, "
         "retry")
    return 1


def _refused(run: Any) -> int:
    """Run a transaction step; a refusal of the registry becomes its message, exit 1."""
    from anchor_service.recognitions import (  # noqa: PLC0415 - needs web3
        RecognitionInputError,
        RecognitionRefusedError,
    )

    try:
        result: int = run()
    except RecognitionRefusedError as exc:
        note(f"refused: {exc}")
        return 1
    except RecognitionInputError as exc:
        note(f"error: {exc}")
        return 2
    return result


def _recognise(args: argparse.Namespace, settings: CommandSettings) -> int:
    from anchor_service.cli.registry import _registry_transactor  # noqa: PLC0415 - no cycle
    from anchor_service.recognitions import recognise, resolve_entity  # noqa: PLC0415

    tx, registry = _registry_transactor(args, settings)

    def step() -> int:
        recogniser = _recogniser(args, registry)
        subject = resolve_entity(registry, args.subject)
        scope = scope_of(args.kind)
        with _sending_lease(args, tx) as held:
            if not held:
                return _busy(tx)
            made = recognise(tx, registry, recogniser=recogniser, subject=subject,
                             scope=scope, valid_from=args.valid_from,
                             valid_until=args.valid_until)
        print(json.dumps(made.to_dict(), indent=2) if args.json else _describe(made))
        return 0

    return _refused(step)


def _withdraw(args: argparse.Namespace, settings: CommandSettings) -> int:
    from anchor_service.cli.registry import _registry_transactor  # noqa: PLC0415 - no cycle
    from anchor_service.recognitions import recognition, withdraw  # noqa: PLC0415

    tx, registry = _registry_transactor(args, settings)

    def step() -> int:
        recogniser = _recogniser(args, registry)
        current = recognition(registry, args.recognition)
        if current.recogniser_id != recogniser:
            raise ValueError(f"recognition {current.id} is entity {current.recogniser_id}'s, "
                             f"not entity {recogniser}'s (--as)")
        with _sending_lease(args, tx) as held:
            if not held:
                return _busy(tx)
            done = withdraw(tx, registry, args.recognition)
        print(json.dumps(done.to_dict(), indent=2) if args.json else _describe(done))
        return 0

    return _refused(step)


def _list(args: argparse.Namespace, settings: CommandSettings) -> int:
    from anchor_service.cli._chain import connect, read_deployment  # noqa: PLC0415
    from anchor_service.recognitions import (  # noqa: PLC0415
        recognitions_between,
        recognitions_of,
        resolve_entity,
    )

    del settings  # reading needs no key
    w3 = connect(args)
    deployment = read_deployment(args.deployment, w3, args.rpc_url)
    registry, _ = deployment.contracts(w3)

    def step() -> int:
        recogniser = _recogniser(args, registry)
        if args.subject is not None:
            listed = recognitions_between(registry, recogniser,
                                          resolve_entity(registry, args.subject))
        else:
            listed = recognitions_of(registry, recogniser, from_block=deployment.block_number)
        if args.json:
            print(json.dumps({"recogniserId": recogniser,
                              "recognitions": [item.to_dict() for item in listed]}, indent=2))
        elif not listed:
            print(f"entity {recogniser} has recorded no recognitions"
                  + (f" of {args.subject}" if args.subject is not None else ""))
        for item in listed if not args.json else ():
            print(_describe(item))
        return 0

    return _refused(step)
