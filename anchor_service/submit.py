"""``anchor-service submit``: anchor a folder of credential files, or a JSONL file, and write
a bundle next to each credential.

Against a running service (``--url``, ``--token`` or MICROCRED_TOKEN), or ``--direct``: the
same pipeline in this process, with the service's configuration (MICROCRED_* or ``--config``).
Every input is parsed and checked before anything is sent. A bad file is named with its problem
and left out, and the others are still anchored and get their bundles (the command then exits
2). Bundles and receipts are not credentials: they are skipped, by their content as well as by
the ``.bundle.json`` name, and named. A progress bar shows large runs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from anchor_service._files import write_private
from anchor_service.errors import NotAnchoredError, SubmitError
from anchor_service.service import Components
from verifier.credential import canonicalize, parse_credential
from verifier.errors import CredentialError
from verifier.receipt import document_kind

__all__ = ["DirectBackend", "HttpBackend", "Loaded", "Outcome", "load_inputs", "submit"]

BUNDLE_SUFFIX = ".bundle.json"


@dataclass(frozen=True)
class Input:
    """One credential and where its bundle goes."""

    source: str  # file name, or file:line
    credential: dict[str, Any]
    bundle_path: Path | None  # None: collected into one JSONL next to the input


class Backend(Protocol):
    def accept(self, credentials: Sequence[dict[str, Any]]) -> list[str]: ...
    def anchor_now(self) -> None: ...
    def anchored(self, ids: Sequence[str]) -> set[str]: ...
    def bundle(self, public_id: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Loaded:
    """What a folder or JSONL file holds: the credentials to anchor, and what was left out."""

    inputs: list[Input]
    rejected: list[str]  # "where: problem", for each input that is not a valid credential
    skipped: list[str]  # "where: why", for each bundle or receipt met among the inputs


@dataclass(frozen=True)
class Outcome:
    """The bundle files written, and the inputs left out (see :class:`Loaded`)."""

    written: list[Path]
    rejected: list[str]
    skipped: list[str]


def load_inputs(path: Path) -> Loaded:
    """Read every credential of a folder (``*.json``) or a ``.jsonl`` file.

    Bad inputs are collected with their problem, bundles and receipts with a note; only a path
    that holds nothing to read at all is an error."""
    inputs: list[Input] = []
    rejected: list[str] = []
    skipped: list[str] = []

    def read(data: bytes, where: str, bundle_path: Path | None) -> None:
        try:
            credential = _parse(data, where)
        except SubmitError as exc:
            rejected.append(str(exc))
            return
        kind = document_kind(credential)
        if kind is not None:
            skipped.append(f"{where}: a {kind}, not a credential")
        else:
            inputs.append(Input(where, credential, bundle_path))

    if path.is_dir():
        files = sorted(p for p in path.glob("*.json") if p.is_file())
        if not files:
            raise SubmitError(f"{path}: no *.json credential files")
        named_bundles = [f for f in files if f.name.endswith(BUNDLE_SUFFIX)]
        if named_bundles:  # most often written by an earlier run: one note for them all
            skipped.append(f"{len(named_bundles)} *{BUNDLE_SUFFIX} file(s): bundles (by their "
                           "name), not credentials")
        for file in files:
            if file.name.endswith(BUNDLE_SUFFIX):
                continue
            try:
                data = file.read_bytes()
            except OSError as exc:
                rejected.append(f"{file.name}: cannot read: {exc.strerror or exc}")
                continue
            read(data, file.name, file.with_name(file.stem + BUNDLE_SUFFIX))
    elif path.suffix == ".jsonl" and path.is_file():
        for number, line in enumerate(path.read_bytes().splitlines(), start=1):
            if line.strip():
                read(line, f"{path.name}:{number}", None)
        if not (inputs or rejected or skipped):
            raise SubmitError(f"{path}: no credentials")
    else:
        raise SubmitError(f"{path}: not a folder of .json files nor a .jsonl file")
    return Loaded(inputs, rejected, skipped)


def _parse(data: bytes, where: str) -> dict[str, Any]:
    try:
        credential = parse_credential(data)
        canonicalize(credential)
    except CredentialError as exc:
        raise SubmitError(f"{where}: {exc}") from None
    return credential


def submit(path: Path, backend: Backend, *, chunk: int = 1000, timeout: float = 300.0,
           show_progress: bool = True,
           notify: Callable[[str], None] | None = None) -> Outcome:
    """Anchor every credential under ``path`` and write its bundle.

    Inputs that are not credentials are left out, each passed to ``notify`` (if given)
    before anything is sent, and listed in the outcome."""
    loaded = load_inputs(path)
    for note in loaded.skipped:
        if notify is not None:
            notify(f"skipped {note}")
    for problem in loaded.rejected:
        if notify is not None:
            notify(f"left out {problem}")
    inputs = loaded.inputs
    if not inputs:
        if loaded.rejected:
            return Outcome([], loaded.rejected, loaded.skipped)
        raise SubmitError(f"{path}: no credentials to anchor ({len(loaded.skipped)} "
                          "bundle or receipt file(s) skipped)")
    with _progress(show_progress) as progress:
        sending = progress.add_task("submitting", total=len(inputs))
        ids: list[str] = []
        for start in range(0, len(inputs), chunk):
            part = inputs[start:start + chunk]
            ids += backend.accept([i.credential for i in part])
            progress.advance(sending, len(part))
        backend.anchor_now()
        # Two inputs holding the same credential share one id: count each id once.
        unique = set(ids)
        anchoring = progress.add_task("anchoring", total=len(unique))
        deadline = time.monotonic() + timeout
        done: set[str] = set()
        while len(done) < len(unique):
            if time.monotonic() > deadline:
                raise SubmitError(f"{len(unique) - len(done)} credentials not anchored after "
                                  f"{timeout:.0f} s; run again later, ids are kept")
            done |= backend.anchored([i for i in unique if i not in done])
            progress.update(anchoring, completed=len(done))
            if len(done) < len(unique):
                time.sleep(0.2)
        writing = progress.add_task("writing bundles", total=len(ids))
        written = _write_bundles(path, inputs, ids, backend.bundle,
                                 lambda: progress.advance(writing))
    return Outcome(written, loaded.rejected, loaded.skipped)


def _write_bundles(path: Path, inputs: list[Input], ids: list[str],
                   fetch: Callable[[str], dict[str, Any]], tick: Callable[[], None]) -> list[Path]:
    written: list[Path] = []
    lines: list[str] = []
    for item, public_id in zip(inputs, ids, strict=True):
        document = json.dumps(fetch(public_id), ensure_ascii=False)
        if item.bundle_path is not None:
            # A bundle holds the learner's credential: owner-only, like the service's files.
            write_private(item.bundle_path, document + "\n", fsync=False)
            written.append(item.bundle_path)
        else:
            lines.append(document)
        tick()
    if lines:
        target = path.with_name(path.stem + ".bundles.jsonl")
        write_private(target, "\n".join(lines) + "\n", fsync=False)
        written.append(target)
    return written


@contextmanager
def _progress(show: bool) -> Iterator[Progress]:
    progress = Progress(TextColumn("{task.description:<16}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), disable=not show, transient=False)
    with progress:
        yield progress


class HttpBackend:
    """Talks to a running service."""

    def __init__(self, url: str, token: str, *, timeout: float = 120.0) -> None:
        self._http = httpx.Client(base_url=url.rstrip("/"), timeout=timeout,
                                  headers={"Authorization": f"Bearer {token}"})

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            answer = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise SubmitError(f"cannot reach the service: {exc}") from None
        if not answer.is_success:
            try:
                detail = answer.json().get("detail", answer.text)
            except ValueError:
                detail = answer.text
            raise SubmitError(f"{method} {path}: HTTP {answer.status_code}: {detail}")
        return answer.json()

    def accept(self, credentials: Sequence[dict[str, Any]]) -> list[str]:
        answer = self._call("POST", "/v1/credentials", json={"credentials": list(credentials)})
        return [item["id"] for item in answer["accepted"]]

    def anchor_now(self) -> None:
        self._call("POST", "/v1/batches")

    def anchored(self, ids: Sequence[str]) -> set[str]:
        return {i for i in ids
                if self._call("GET", f"/v1/credentials/{i}")["state"] == "anchored"}

    def bundle(self, public_id: str) -> dict[str, Any]:
        document: dict[str, Any] = self._call("GET", f"/v1/credentials/{public_id}/bundle")
        return document


class DirectBackend:
    """Runs the pipeline in this process, with the service's configuration."""

    def __init__(self, components: Components, issuer_name: str) -> None:
        self._components = components
        matches = [i for i in components.store.issuers() if i.name == issuer_name]
        if not matches:
            raise SubmitError(f"no issuer named {issuer_name!r} in {components.store}")
        self._issuer = matches[0]
        if self._issuer.id not in components.signers:
            raise SubmitError(f"no keystore for issuer {issuer_name!r}")

    def accept(self, credentials: Sequence[dict[str, Any]]) -> list[str]:
        """As ``POST /v1/credentials`` accepts them: signed with the issuer's signing key when
        it has one, checked when they arrive signed, as they are otherwise."""
        from anchor_service.api.credentials import credential_items  # noqa: PLC0415
        from anchor_service.api.errors import ApiError  # noqa: PLC0415

        try:
            items = credential_items(self._components, self._issuer.id, credentials)
        except ApiError as exc:
            raise SubmitError(f"{exc.error}: {exc.detail}") from None
        return [a.public_id for a in self._components.store.accept(self._issuer.id, items)]

    def anchor_now(self) -> None:
        self._components.pipeline.cut_now(self._issuer.id)

    def anchored(self, ids: Sequence[str]) -> set[str]:
        self._components.pipeline.advance()
        done = set()
        for public_id in ids:
            try:
                self._components.receipts.receipt(public_id)
            except NotAnchoredError:
                continue
            done.add(public_id)
        return done

    def bundle(self, public_id: str) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(
            self._components.receipts.bundle(public_id).to_json())
        return document
