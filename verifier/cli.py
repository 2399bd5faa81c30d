"""``verify-credential``: check bundles (credential and receipt in one file) against the chain.

    verify-credential bundle.json --rpc-url http://127.0.0.1:8545 --trust trust.json
    verify-credential wallet/ --trust trust.json --json        # a folder: its bundles
    verify-credential bundle.json --trust trust.json --offline # no chain: what can be checked
    verify-credential bundle.json --trust trust.json --offline --issuer-key z6Mk...
                                                # the issuer's key, known from the issuer
    verify-credential bundle.json --trust trust.json --status-list revocation.json
                                                # and does the published list agree?
    verify-credential --portfolio wallet/ --trust trust.json \\
        --recognised-by did:web:admissions.example --require-ects 30 --kind non-formal
                                                # a learner's portfolio: ECTS summed by kind

A credential must carry its issuer's signature (a W3C Data Integrity proof) unless the trust
file sets "requireSignature": false or --allow-unsigned is given; the report then says that
the credential was accepted unsigned.

With --status-list (repeatable), each published BitstringStatusListCredential of the
credential's issuer and status list is compared with the chain at the block its evidence names
(check status_list_matches_chain); at least one list given must be the credential's (in a
folder, every bundle's).

With --portfolio PATH (a folder of bundles, or a VerifiablePresentation JSON file holding the
credentials and their receipts in "anchorReceipts"), every credential is verified against one
state of the chain and its ECTS and kind are read from its own format; the valid ones, not
duplicated, recognised by --recognised-by (when given) for their kind at their issuance time,
are summed by kind and institution, and --require-ects N [--kind K] says whether they reach N
(docs/portfolio.md). The exit codes are the same, read for the whole portfolio: 1 also when
the requirement is not met, 2 also for a --recognised-by DID the registry does not know or a
portfolio of more than 500 credentials.

Exit codes:
  0  every bundle is valid
  1  at least one bundle is not valid (a JSON document that is not a well-formed bundle is
     not valid, reported like any other failure)
  2  error, and no bundle found not valid: bad arguments (an --issuer-key that is not an
     Ed25519, P-256 or P-384 publicKeyMultibase), a bad trust file, a file that
     cannot be read or is not JSON (a syntax error, a duplicate key, an integer beyond
     +-(2**53 - 1), nesting too deep), or a chain that could not be read (NOT CHECKED: the
     node unreachable, or without the past state --as-of needs)
  3  offline checks passed: with --offline, every check that ran passed, and the chain
     checks (anchor, issuer trust, scope, revocation) were not run; no bundle failed
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from verifier.chain import ChainReader, JsonRpcChainReader
from verifier.contract_types import SCOPES
from verifier.credential import parse_json_object
from verifier.errors import (
    CredentialError,
    DataIntegrityError,
    PortfolioError,
    UnreadableDocumentError,
    UnreadableJSONError,
    VerifierError,
)
from verifier.multikey import Multikey
from verifier.portfolio import (
    MAX_PORTFOLIO_ENTRIES,
    PortfolioEntry,
    PortfolioReport,
    Requirement,
    entries_from_bundles,
    entries_from_presentation,
    format_ects,
    kind_named,
    requirement_problem,
    verify_portfolio,
)
from verifier.receipt import BUNDLE_FORMAT, document_kind
from verifier.text import visible
from verifier.trust import TrustConfig
from verifier.verify import CheckStatus, VerificationReport, parse_datetime, verify_bundle_text

__all__ = ["main"]

_MARKS = {CheckStatus.PASSED: "PASS", CheckStatus.FAILED: "FAIL",
          CheckStatus.NOT_CHECKED: "----", CheckStatus.NOT_APPLICABLE: "n/a "}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="verify-credential",
                                     description=__doc__.split("\n\n")[0],
                                     epilog=__doc__[__doc__.index("Exit codes:"):],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", type=Path, nargs="?", default=None,
                        help="a bundle file, or a folder: every *.json file in it that is a "
                        "bundle (credentials beside them are skipped)")
    parser.add_argument("--trust", type=Path, required=True,
                        help="JSON trust file: trusted deployments and minimum confirmations")
    parser.add_argument("--rpc-url", default="http://127.0.0.1:8545", help="JSON-RPC endpoint")
    parser.add_argument("--ignore-log-blooms", action="store_true",
                        help="read the head's state again at each new chain head instead of "
                        "keeping it while the blocks' log blooms show no change (for a node "
                        "whose blooms cannot be relied on)")
    parser.add_argument("--offline", action="store_true",
                        help="do not read the chain: the checks that need it are not run")
    parser.add_argument("--as-of", type=_aware_time, default=None,
                        help="judge the credential at this ISO 8601 time (with a time zone) "
                        "instead of now: its validity period then, and its revocation and "
                        "suspension as the chain stood then")
    parser.add_argument("--allow-unsigned", action="store_true",
                        help="accept a credential without an issuer signature on its anchor "
                        "alone (the report says so); a signature that is there is still "
                        "checked")
    parser.add_argument("--issuer-key", metavar="z...", default=None,
                        help="the issuer's public key (publicKeyMultibase), as known from the "
                        "issuer: the proof must be made with this key")
    parser.add_argument("--status-list", type=Path, action="append", default=[],
                        metavar="FILE", help="a published status list credential (JSON) to "
                        "compare with the chain; repeatable (the revocation and the "
                        "suspension list)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    portfolio = parser.add_argument_group("portfolio")
    portfolio.add_argument("--portfolio", type=Path, metavar="PATH", default=None,
                           help="verify a portfolio instead: a folder of bundles, or a "
                           "VerifiablePresentation JSON file with anchorReceipts")
    portfolio.add_argument("--recognised-by", metavar="DID", default=None,
                           help="count only credentials whose issuer this institution "
                           "recognises (in the registry) for their kind at their issuance time")
    portfolio.add_argument("--require-ects", type=_ects, metavar="N", default=None,
                           help="say whether the counted ECTS reach N")
    portfolio.add_argument("--kind", choices=list(SCOPES), default=None,
                           help="with --require-ects: count only this kind")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``verify-credential`` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    _check_arguments(parser, args)
    if args.portfolio is not None:
        return _portfolio(args)
    try:
        issuer_key = _issuer_key(args.issuer_key)
        trust = TrustConfig.load(args.trust)
        if args.allow_unsigned:
            trust = trust.model_copy(update={"require_signature": False})
        files = _bundle_files(args.path)
        status_lists = [_status_list(path) for path in args.status_list]
        reader = _reader(args)
    except (VerifierError, OSError) as exc:
        print(f"verify-credential: error: {visible(str(exc))}", file=sys.stderr)
        return 2
    # What is loaded by now (the imports; web3 alone is about 150,000 objects) lives until
    # exit. Freezing it spares each later full garbage collection from scanning it again:
    # that scan was a third of the time spent verifying a folder of thousands of bundles.
    gc.freeze()
    reports = []
    skipped: list[str] = []
    unreadable: list[Path] = []
    folder = args.path.is_dir()
    for file in files:
        try:
            text = file.read_bytes()
        except OSError as exc:  # named, and the other files are still verified
            unreadable.append(file)
            print(f"verify-credential: error: {visible(str(exc))}", file=sys.stderr)
            continue
        if folder and _BUNDLE_MARK not in text and not _names_bundle_format(text):
            skipped.append(file.name)  # a credential or another file beside the bundles
            continue
        try:
            reports.append((file, verify_bundle_text(text, trust=trust, reader=reader,
                                                      as_of=args.as_of,
                                                      issuer_key=issuer_key,
                                                      status_lists=status_lists)))
        except UnreadableDocumentError as exc:
            unreadable.append(file)
            print(visible(f"verify-credential: error: {file}: {exc}"), file=sys.stderr)
    if skipped:
        print(visible(f"verify-credential: skipped {len(skipped)} file(s) that are not "
                      f"bundles: {', '.join(skipped[:5])}" + (", ..." if len(skipped) > 5
                                                               else "")), file=sys.stderr)
    if not reports and not unreadable:
        print(visible(f"verify-credential: error: {args.path}: no bundles among its *.json "
                      "files"), file=sys.stderr)
        return 2
    # A bundle found not valid is 1 whatever else happened; then an unreadable file (or a
    # chain that could not be read) is an error, 2.
    code = _exit_code([report for _, report in reports])
    if unreadable and code != 1:
        code = 2
    try:
        if reports:
            _print(reports, as_json=args.json, folder=folder)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as other command-line tools do. The
        # verdict stands; stdout now points nowhere so that the final flush cannot fail.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return code


def _check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse (exit 2, with argparse's usage line) options that do not go together."""
    if args.offline and args.ignore_log_blooms:
        parser.error("--ignore-log-blooms is about reading the chain, not --offline")
    if args.portfolio is None:
        if args.path is None:
            parser.error("give a bundle file or folder, or --portfolio PATH")
        for given, name in ((args.recognised_by, "--recognised-by"),
                            (args.require_ects, "--require-ects"), (args.kind, "--kind")):
            if given is not None:
                parser.error(f"{name} goes with --portfolio")
        return
    if args.path is not None:
        parser.error("give either a bundle file or folder, or --portfolio PATH, not both")
    if args.kind is not None and args.require_ects is None:
        parser.error("--kind goes with --require-ects")
    if args.status_list or args.issuer_key is not None:
        parser.error("--status-list and --issuer-key are for single credentials, not "
                     "--portfolio")
    if args.offline and args.recognised_by is not None:
        parser.error("--recognised-by needs the chain (the registry holds the recognitions), "
                     "not --offline")


def _ects(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    problem = requirement_problem(value)
    if problem is not None:
        raise argparse.ArgumentTypeError(f"{text!r:.40}: {problem}")
    return value


def _reader(args: argparse.Namespace) -> ChainReader | None:
    """The chain reader the arguments ask for (None: ``--offline``)."""
    if args.offline:
        return None
    return JsonRpcChainReader(args.rpc_url, trust_log_blooms=not args.ignore_log_blooms)


def _portfolio(args: argparse.Namespace) -> int:
    """``--portfolio``: verify every credential of a portfolio and sum its ECTS."""
    try:
        trust = TrustConfig.load(args.trust)
        if args.allow_unsigned:
            trust = trust.model_copy(update={"require_signature": False})
        entries = _portfolio_entries(args.portfolio)
        requirement = None if args.require_ects is None else Requirement(
            args.require_ects, None if args.kind is None else kind_named(args.kind))
        reader = _reader(args)
        report = verify_portfolio(entries, trust=trust, reader=reader,
                                  recognised_by=args.recognised_by, requirement=requirement,
                                  as_of=args.as_of)
    except (VerifierError, OSError) as exc:
        print(f"verify-credential: error: {visible(str(exc))}", file=sys.stderr)
        return 2
    try:
        if args.json:
            print(json.dumps(report.to_dict(), indent=2))
        else:
            _print_portfolio(report)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return report.exit_code


def _portfolio_entries(path: Path) -> list[PortfolioEntry]:
    """A folder's bundles (its other JSON files skipped, as for a folder of bundles), or the
    credentials of a presentation file."""
    if path.is_dir():
        named: list[tuple[str, str | bytes]] = []
        for file in _bundle_files(path):
            text = file.read_bytes()
            if _BUNDLE_MARK in text or _names_bundle_format(text):
                named.append((file.name, text))
            if len(named) > MAX_PORTFOLIO_ENTRIES:  # refused before the rest is read
                raise PortfolioError(f"{path}: more than {MAX_PORTFOLIO_ENTRIES} bundles: a "
                                     f"portfolio holds at most {MAX_PORTFOLIO_ENTRIES}")
        if not named:
            raise VerifierError(f"{path}: no bundles among its *.json files")
        return entries_from_bundles(named)
    if not path.is_file():
        raise VerifierError(f"{path}: no such file or folder")
    return entries_from_presentation(parse_json_object(path.read_bytes(), "presentation"))


def _print_portfolio(report: PortfolioReport) -> None:
    """The portfolio for a person: a table of its credentials, the totals, the requirement."""
    chain = report.chain
    if chain is not None:
        at = datetime.fromtimestamp(chain.block_time, UTC).isoformat()
        print(f"chain {chain.chain_id}, block {chain.block_number} "
              f"(0x{chain.block_hash.hex()}), {at}")
    if report.as_of is not None:
        print("as of " + datetime.fromtimestamp(report.as_of, UTC).isoformat())
    if report.recognised_by is not None:
        print(visible(f"recognised by {report.recognised_by} (entity {report.recogniser_id})"))
    rows = [("#", "credential", "issuer", "verdict", "kind", "ECTS", "recognised", "counted")]
    for entry in report.entries:
        credits = entry.credits
        recognition = entry.recognition
        rows.append((
            str(entry.index), _cut(entry.source, 28),
            _cut(entry.issuer_name or entry.issuer_did or "-", 24),
            _SHORT_VERDICTS.get(entry.verdict, entry.verdict),
            credits.kind.label if credits is not None and credits.kind is not None else "-",
            format_ects(credits.ects) if credits is not None and credits.ects is not None
            else "-",
            "-" if recognition is None else recognition.path if recognition.counts
            else "no",
            "yes" if entry.counted else "no"))
    widths = [max(len(row[n]) for row in rows) for n in range(len(rows[0]))]
    print()
    for row in rows:
        print(visible("  ".join(cell.ljust(width) for cell, width in zip(row, widths,
                                                                          strict=True))
                      .rstrip()))
    totals = report.to_dict()["totals"]
    print(f"\ncounted: {format_ects(report.ects)} ECTS from {totals['counted']} of "
          f"{len(report.entries)} credentials")
    print("by kind: " + ", ".join(f"{kind} {value}" for kind, value
                                  in totals["byKind"].items()))
    if totals["byInstitution"]:
        print("by institution:")
    # An institution is an entity of one registry: the registry is named when several are.
    several = len({row["registry"] for row in totals["byInstitution"]}) > 1
    for row in totals["byInstitution"]:
        where = f", registry {row['registry']}" if several else ""
        print(visible(f"  {row['issuerName'] or row['issuerDid']} ({row['issuerDid']}{where}): "
                      f"{row['ects']} ECTS"))
    if totals["mixedSubjects"]:
        # Counted all the same (the holder is not checked): the reader decides.
        print(visible("warning: the credentials are of " + str(len(totals["subjects"]))
                      + " different learners: " + ", ".join(totals["subjects"][:5])
                      + (", ..." if len(totals["subjects"]) > 5 else "")))
    not_counted = [entry for entry in report.entries if not entry.counted]
    if not_counted:
        print("not counted:")
        for entry in not_counted:
            print(visible(f"  {entry.index} {_cut(entry.source, 40)}: {entry.reason}"))
    if report.requirement is not None:
        print(f"requirement: {report.requirement.detail}")


_SHORT_VERDICTS = {"valid": "VALID", "not_valid": "NOT VALID",
                   "offline_checks_passed": "OFFLINE", "not_checked": "NOT CHECKED"}


def _cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, cut in the middle: names and DIDs differ at
    their ends (did:web:localhost:issuers:alliance-uni-a, -b, -c)."""
    if len(text) <= width:
        return text
    head = (width - 1) // 2
    return text[:head] + "\u2026" + text[len(text) - (width - 1 - head):]


def _exit_code(reports: list[VerificationReport]) -> int:
    if any(report.verdict == "not_valid" for report in reports):
        return 1
    if any(report.not_checked for report in reports):
        return 2  # the chain could not be read: an error, not a verdict on the credential
    if any(report.offline_checks_passed for report in reports):
        return 3
    return 0


def _issuer_key(text: str | None) -> Multikey | None:
    if text is None:
        return None
    try:
        return Multikey.from_multibase(text)
    except DataIntegrityError as exc:
        raise VerifierError(f"--issuer-key: {exc}") from None


def _status_list(path: Path) -> dict[str, Any]:
    """A status list credential file, read as strictly as a bundle."""
    try:
        return parse_json_object(path.read_bytes(), "status list")
    except OSError as exc:
        raise VerifierError(f"--status-list {path}: {exc.strerror or exc}") from None
    except VerifierError as exc:
        raise VerifierError(f"--status-list {path}: {exc}") from None


def _aware_time(text: str) -> datetime:
    """An --as-of time: ISO 8601 with a time zone, from the Unix epoch to the end of year 9999
    in UTC. A time may parse and still be out of that range (9999-12-31T23:59:59-14:00 is year
    10000 in UTC), and then fail where it is converted or printed: refused here instead."""
    try:
        parsed = parse_datetime(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(visible(str(exc))) from None
    try:
        seconds = parsed.timestamp()
        datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError):
        raise argparse.ArgumentTypeError(
            visible(f"{text[:40]!r} is out of range: give a time from 1970-01-01T00:00:00Z to "
                    "9999-12-31T23:59:59Z")) from None
    if seconds < 0:
        raise argparse.ArgumentTypeError(
            visible(f"{text[:40]!r} is before 1970-01-01T00:00:00Z, which no chain answers for"))
    return parsed


# In a folder, bundles sit beside the credentials they were made from (``anchor-service
# submit`` writes them there): only files that name the bundle format are verified.
_BUNDLE_MARK = f'"{BUNDLE_FORMAT}"'.encode()


def _names_bundle_format(text: bytes) -> bool:
    """Whether a file without the plain bundle marker is a bundle all the same (its format
    written with escapes), or is not JSON at all; either way it is verified, not skipped."""
    try:
        document = parse_json_object(text, "file")
    except UnreadableJSONError:
        return True  # verified, and so reported as the error it is
    except CredentialError:
        return False  # JSON, but not an object: not a bundle
    return document_kind(document) == "bundle"


def _bundle_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.glob("*.json") if p.is_file())
        if not files:
            raise VerifierError(f"{path}: no *.json files")
        return files
    if not path.is_file():
        raise VerifierError(f"{path}: no such file")
    return [path]


_VERDICTS = {"valid": "VALID", "not_valid": "NOT VALID",
             "offline_checks_passed": "OFFLINE CHECKS PASSED (chain not checked)",
             "not_checked": "NOT CHECKED (the chain could not be read)"}
_RESULTS = {"valid": "valid", "offline_checks_passed": "offline checks passed (chain not checked)",
            "not_checked": "not checked: the chain could not be read"}


def _print(reports: list[tuple[Path, VerificationReport]], *, as_json: bool,
           folder: bool) -> None:
    """The reports, for a person (everything from a bundle escaped) or as JSON (escaped by
    the encoder)."""
    if as_json:
        documents = [{"file": str(f), **r.to_dict()} for f, r in reports]
        print(json.dumps(documents if folder else documents[0], indent=2))
        return
    for file, report in reports:
        verdict = _VERDICTS[report.verdict]
        named = f"{report.issuer_name} " if report.issuer_name else ""
        issuer = f", issuer {named}{report.issuer_did}" if report.issuer_did else ""
        anchored = (", anchored " + datetime.fromtimestamp(report.anchored_at, UTC).isoformat()
                    if report.anchored_at else "")
        print(visible(f"{file}: {verdict}{issuer}{anchored}"))
        if report.signature is not None:
            print(visible(f"  signed ({report.signature['cryptosuite']}) with "
                          f"{report.signature['verificationMethod']}"))
        elif report.unsigned_allowed:
            print("  UNSIGNED: no issuer signature; accepted on its anchor alone "
                  "(unsigned credentials allowed)")
        if not folder or not report.valid:
            for check in report.checks:
                print(visible(f"  [{_MARKS[check.status]}] {check.name}: {check.detail}"))
    if folder:
        valid = sum(report.valid for _, report in reports)
        print(f"\n{'file':<40} result")
        for file, report in reports:
            failed = [c.name for c in report.checks if c.status is CheckStatus.FAILED]
            result = _RESULTS.get(report.verdict) or ("failed: " + ", ".join(failed)
                                                      if failed else "not fully checked")
            print(visible(f"{file.name:<40} {result}"))
        offline = sum(report.offline_checks_passed for _, report in reports)
        print(f"{valid} of {len(reports)} valid"
              + (f", {offline} passed the offline checks (chain not checked)" if offline else ""))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
