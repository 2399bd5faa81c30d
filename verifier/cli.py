"""``verify-credential``: check bundles (credential and receipt in one file) against the chain.

    verify-credential bundle.json --rpc-url http://127.0.0.1:8545 --trust trust.json
    verify-credential wallet/ --trust trust.json --json        # a folder: its bundles
    verify-credential bundle.json --trust trust.json --offline # no chain: what can be checked
    verify-credential bundle.json --trust trust.json --offline --issuer-key z6Mk...
                                                # the issuer's key, known from the issuer
    verify-credential bundle.json --trust trust.json --status-list revocation.json
                                                # and does the published list agree?

A credential must carry its issuer's signature (a W3C Data Integrity proof) unless the trust
file sets "requireSignature": false or --allow-unsigned is given; the report then says that
the credential was accepted unsigned.

With --status-list (repeatable), each published BitstringStatusListCredential of the
credential's issuer and status list is compared with the chain at the block its evidence names
(check status_list_matches_chain); at least one list given must be the credential's (in a
folder, every bundle's).

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
from pathlib import Path
from typing import Any

from verifier.chain import ChainReader, JsonRpcChainReader
from verifier.credential import parse_json_object
from verifier.errors import (
    CredentialError,
    DataIntegrityError,
    UnreadableDocumentError,
    UnreadableJSONError,
    VerifierError,
)
from verifier.multikey import Multikey
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
    parser.add_argument("path", type=Path, help="a bundle file, or a folder: every *.json file "
                        "in it that is a bundle (credentials beside them are skipped)")
    parser.add_argument("--trust", type=Path, required=True,
                        help="JSON trust file: trusted deployments and minimum confirmations")
    parser.add_argument("--rpc-url", default="http://127.0.0.1:8545", help="JSON-RPC endpoint")
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
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``verify-credential`` console script."""
    args = _parser().parse_args(argv)
    try:
        issuer_key = _issuer_key(args.issuer_key)
        trust = TrustConfig.load(args.trust)
        if args.allow_unsigned:
            trust = trust.model_copy(update={"require_signature": False})
        files = _bundle_files(args.path)
        status_lists = [_status_list(path) for path in args.status_list]
        reader: ChainReader | None = None if args.offline else JsonRpcChainReader(args.rpc_url)
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
    try:
        return parse_datetime(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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
