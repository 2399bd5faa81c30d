"""``anchor-service submit``: anchor a folder of credential files, or a JSONL file, and write
a bundle next to each credential.

Against a running service (``--url``, ``--token`` or MICROCRED_TOKEN), or ``--direct``: the
same pipeline in this process, with the service's configuration (MICROCRED_* or ``--config``).
Every input is parsed and checked before anything is sent; a bad file stops the run with its
name and the problem. A progress bar shows large runs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any, Protocol

import httpx
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from anchor_service.errors import AnchorServiceError, NotAnchoredError
from anchor_service.service import Components
from anchor_service.store import NewCredential
from verifier.credential import canonicalize, new_salt, parse_credential
from verifier.errors import CredentialError

__all__ = ["DirectBackend", "HttpBackend", "SubmitError", "load_inputs", "submit"]

BUNDLE_SUFFIX = ".bundle.json"


class SubmitError(AnchorServiceError):
    """An input could not be read, or the service refused or did not finish."""


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


def load_inputs(path: Path) -> list[Input]:
    """Read every credential of a folder (``*.json``, bundles skipped) or a ``.jsonl`` file."""
    if path.is_dir():
        files = sorted(p for p in path.glob("*.json") if not p.name.endswith(BUNDLE_SUFFIX))
        if not files:
            raise SubmitError(f"{path}: no *.json credential files")
        return [Input(f.name, _parse(f.read_bytes(), f.name),
                      f.with_name(f.stem + BUNDLE_SUFFIX)) for f in files]
    if path.suffix == ".jsonl" and path.is_file():
        inputs = []
        for number, line in enumerate(path.read_bytes().splitlines(), start=1):
            if line.strip():
                where = f"{path.name}:{number}"
                inputs.append(Input(where, _parse(line, where), None))
        if not inputs:
            raise SubmitError(f"{path}: no credentials")
        return inputs
    raise SubmitError(f"{path}: not a folder of .json files nor a .jsonl file")


def _parse(data: bytes, where: str) -> dict[str, Any]:
    try:
        credential = parse_credential(data)
        canonicalize(credential)
    except CredentialError as exc:
        raise SubmitError(f"{where}: {exc}") from None
    return credential


def submit(path: Path, backend: Backend, *, chunk: int = 1000, timeout: float = 300.0,
           show_progress: bool = True) -> list[Path]:
    """Anchor everything under ``path``; return the bundle files written."""
    inputs = load_inputs(path)
    with _progress(show_progress) as progress:
        sending = progress.add_task("submitting", total=len(inputs))
        ids: list[str] = []
        for start in range(0, len(inputs), chunk):
            part = inputs[start:start + chunk]
            ids += backend.accept([i.credential for i in part])
            progress.advance(sending, len(part))
        backend.anchor_now()
        anchoring = progress.add_task("anchoring", total=len(ids))
        deadline = time.monotonic() + timeout
        done: set[str] = set()
        while len(done) < len(set(ids)):
            if time.monotonic() > deadline:
                raise SubmitError(f"{len(set(ids)) - len(done)} credentials not anchored after "
                                  f"{timeout:.0f} s; run again later, ids are kept")
            done |= backend.anchored([i for i in ids if i not in done])
            progress.update(anchoring, completed=len(done))
            if len(done) < len(set(ids)):
                time.sleep(0.2)
        writing = progress.add_task("writing bundles", total=len(ids))
        return _write_bundles(path, inputs, ids, backend.bundle,
                              lambda: progress.advance(writing))


def _write_bundles(path: Path, inputs: list[Input], ids: list[str],
                   fetch: Callable[[str], dict[str, Any]], tick: Callable[[], None]) -> list[Path]:
    written: list[Path] = []
    lines: list[str] = []
    for item, public_id in zip(inputs, ids, strict=True):
        document = json.dumps(fetch(public_id), ensure_ascii=False)
        if item.bundle_path is not None:
            item.bundle_path.write_text(document + "\n", encoding="utf-8")
            written.append(item.bundle_path)
        else:
            lines.append(document)
        tick()
    if lines:
        target = path.with_name(path.stem + ".bundles.jsonl")
        target.write_text("\n".join(lines) + "\n", encoding="utf-8")
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
        items = []
        for credential in credentials:
            canonical = canonicalize(credential)
            items.append(NewCredential(sha256(canonical).digest(), new_salt(), canonical))
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
