"""
Batch results kept on a store that cannot append (S3, GCS, a local disk): committed in pieces, then one file.

Object stores hold an appended file in memory or in an open multipart upload until it is closed, so a
hard-killed task (OOM, a lost worker, a preempted spot node) would leave nothing: every answered input
would be paid for again. Instead, results go in small *pieces*, each one object written whole (one PUT)
once it holds ``max_results`` results or has been open ``max_seconds``; a kill loses at most the open
piece. A piece is written in the batch's event loop, which waits for it: a few milliseconds every
``max_results`` results, for a loss bounded by one piece. When the batch succeeds the pieces are joined into one JSON
Lines object at the output path (what downstream readers expect) and removed.

Beside the output, ``<name>.parts/`` holds the pieces (``part-<seq>-t<try>.jsonl``) and ``manifest.json``:
the *work key*, a fingerprint of the inputs, task, parameters, engine and model revision. A retry reuses
results only under the same key; other work's results are removed and the batch starts afresh.

The store touches nothing it did not write. A file already at the output path that no manifest of
this output vouches for (another tool's export, the batch's own input) is refused before any request,
unless the caller allows replacing it. One work writes an output at a time: a *claim*
(``claim-<n>.json``, created only if absent, an S3 conditional write or an exclusive create on a disk)
names its holder, is renewed while the batch runs and released at the end; a second work is refused
while the claim is fresh, a retry of the same task instance takes it over at once, and anyone takes
over a claim not renewed for ``claim_ttl`` seconds (its holder died). The holder checks before every
commit and before the final move that its claim is still the newest, so a final file never mixes
two works.

Paths are ``pathlib``-like objects over fsspec (Airflow's ``ObjectStoragePath``): this module needs no
Airflow. Its own objects are read and written through the path's filesystem (``path.fs``), not the
path's ``open()``: Airflow's wrapper would report every piece, and every write, to its lineage collector.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from airflow_provider_hfep.endpoints.errors import EndpointsError, InvalidEndpointArgumentError

if TYPE_CHECKING:
    from collections.abc import Iterator

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
_PIECE = re.compile(r"^part-(\d+)-t(\d+)\.jsonl$")
_CLAIM = re.compile(r"^claim-(\d+)\.json$")
#: a change of how the key is computed or of the pieces' format changes this
KEY_VERSION = 1
#: the manifest's format: 2 records the final file it wrote (size and fingerprint)
MANIFEST_FORMAT = 2


class OutputClaimedError(EndpointsError):
    """Another work holds the output path (its claim is fresh), or took it over while this one wrote."""


class StorePath(Protocol):
    """What the store needs of a path: Airflow's ``ObjectStoragePath`` (a universal-pathlib path)."""

    @property
    def name(self) -> str: ...
    @property
    def parent(self) -> Any: ...
    @property
    def path(self) -> str: ...
    @property
    def fs(self) -> Any: ...
    @property
    def protocol(self) -> str: ...
    def __truediv__(self, other: str) -> Any: ...
    def exists(self) -> bool: ...
    def iterdir(self) -> Any: ...
    def unlink(self) -> None: ...
    def mkdir(self, *, parents: bool = ..., exist_ok: bool = ...) -> None: ...


def store_scheme(path: StorePath) -> str:
    """Name the store's scheme without the connection: ``s3``, ``gs``..., or ``file`` for a local disk."""
    protocol = path.protocol or "file"
    return "file" if protocol in ("file", "local") else protocol


def store_identity(path: StorePath) -> tuple[str, str]:
    """
    Name the object a path points at, however it is spelled: the store's scheme and its absolute key.

    ``s3://aws_conn@bucket/key`` and ``s3://bucket/key`` are one object; so are a relative and an
    absolute local path (and a symbolic link and its target).
    """
    scheme = store_scheme(path)
    if scheme == "file":
        return scheme, os.path.realpath(path.path)
    bucket, _, key = path.path.lstrip("/").partition("/")
    # A connection id left in the netloc (``conn@bucket``): no bucket name holds an '@'.
    return scheme, f"{bucket.rpartition('@')[2]}/{key}"


class IndexSet:
    """A set of input indices, one byte per index: flat memory for batches of any size."""

    def __init__(self) -> None:
        self._flags = bytearray()
        self.count = 0

    def add(self, index: int) -> None:
        if index >= len(self._flags):
            self._flags.extend(bytes(index + 1 - len(self._flags) + 1024))
        if not self._flags[index]:
            self._flags[index] = 1
            self.count += 1

    def __contains__(self, index: int) -> bool:
        return index < len(self._flags) and bool(self._flags[index])


@dataclass(frozen=True)
class CommitSettings:
    """
    When a piece is committed.

    :param max_results: results in one piece at most.
    :param max_seconds: seconds a piece stays open at most (while results arrive).
    :param max_bytes: bytes in one piece at most: below s3fs's block size (50 MiB), so that a piece is
        one PUT, never a multipart upload a kill could leave open.
    """

    max_results: int = 500
    max_seconds: float = 10.0
    max_bytes: int = 16 * 1024 * 1024
    #: seconds a claim on the output stays valid without renewal (renewed every third of it)
    claim_ttl: float = 300.0


def work_key(**parts: Any) -> str:
    """Compute the work key: a SHA-256 of what decides the results (JSON with sorted keys: order-free)."""
    text = json.dumps({"version": KEY_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


#: characters the join writes at a time (its memory, whatever the records' size)
JOIN_WRITE_BYTES = 1024 * 1024
#: the joined file's upload parts on an object store (s3fs buffers one in memory; its default is 50 MiB)
JOIN_BLOCK_BYTES = 8 * 1024 * 1024


def _open(path: StorePath, mode: str, **options: Any) -> Any:
    """Open through the path's filesystem (see the module's docstring)."""
    return path.fs.open(path.path, mode, **options)


class RecordFormat(Protocol):
    """How the store reads its records: the input each is the result of, and whether it is an answer."""

    def index(self, record: dict[str, Any]) -> int | None: ...
    def answered(self, record: dict[str, Any]) -> bool: ...


class IndexedRecords:
    """The provider's own records: ``{"index", "output"}`` or ``{"index", "error"}``."""

    def index(self, record: dict[str, Any]) -> int | None:
        index = record.get("index")
        return index if isinstance(index, int) else None

    def answered(self, record: dict[str, Any]) -> bool:
        return "output" in record


INDEXED = IndexedRecords()


def read_records(
    path: StorePath, records: RecordFormat = INDEXED
) -> Iterator[tuple[int, dict[str, Any], str]]:
    """
    Yield ``(index, record, line)`` for the complete records of a JSON Lines file (``line`` as written).

    A torn last line (a write cut short), and a record of no input, are skipped.
    """
    with _open(path, "r") as lines:
        for line in iter(lines.readline, ""):  # Airflow 3.0's files cannot be iterated
            if not line.endswith("\n"):
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            index = records.index(record) if isinstance(record, dict) else None
            if index is not None:
                yield index, record, line


class ResultStore:
    """
    The results of one batch at ``output``, committed in pieces and joined at the end.

    Use: :meth:`resume` (what earlier tries kept), :meth:`add` each result as it arrives while
    :meth:`keep_committing` runs in the batch's event loop, :meth:`close` (always, to commit the open
    piece), then :meth:`finish` when the batch succeeded.

    :param output: where the final JSON Lines object goes.
    :param work: what decides the results (inputs digest, task, parameters, model...): its
        :func:`work_key` is recorded with the pieces, and results under another key are not reused.
    :param attempt: the try number, in the pieces' names (two tries never write the same piece).
    :param settings: when pieces are committed, and how long a claim lasts.
    :param holder: who writes (the task instance: dag, task, run and map index; not the try): a
        retry of the same holder takes its claim over at once.
    :param replace_output: replace a file at ``output`` that this store did not write.
    :param records: how its records name their input and tell an answer from an error (the provider's
        ``{"index", ...}`` records by default; OpenAI batch output lines, by ``custom_id``).
    """

    def __init__(
        self,
        output: StorePath,
        work: dict[str, Any],
        attempt: int,
        settings: CommitSettings,
        holder: str = "",
        replace_output: bool = False,
        records: RecordFormat = INDEXED,
    ) -> None:
        self.output = output
        self.parts: StorePath = output.parent / f"{output.name}.parts"
        self.work = work
        self.key = work_key(**work)
        self.attempt = attempt
        self.settings = settings
        self.holder = holder
        self.replace_output = replace_output
        self.records = records
        self._claim: StorePath | None = None
        self._claim_renewed = 0.0
        self.answered = IndexSet()  # indices with an output (not an error), earlier tries included
        self._pieces: list[StorePath] = []
        self._next_piece = 1
        self._open: list[str] = []
        self._open_bytes = 0
        self._opened_at = 0.0

    # -- resuming ------------------------------------------------------------------------------

    def resume(self) -> IndexSet:
        """
        Claim the output, then load the results earlier tries of the same work committed.

        Results this store wrote for other work are removed; anything it did not write is refused
        (:class:`InvalidEndpointArgumentError`) unless ``replace_output``.
        """
        self.parts.mkdir(parents=True, exist_ok=True)
        _forget_listings(self.parts)
        self._take_claim()
        self._abort_open_uploads()
        manifest = self._manifest()
        pieces = self._listed_pieces()
        if self._not_ours(manifest, pieces):
            manifest = {}  # replace_output: nothing there is taken as this work's results
        if manifest.get("key") != self.key:
            if pieces or self.output.exists():
                reason = "no work key" if not manifest else f"work key {str(manifest.get('key'))[:12]}…"
                log.warning(
                    "Results at %s belong to other work (%s, this batch's is %s…): starting afresh",
                    self.output,
                    reason,
                    self.key[:12],
                )
                for piece in pieces:
                    piece.unlink()
                if self.output.exists():
                    self.output.unlink()
            self._write_manifest()
            return self.answered
        self._pieces = pieces
        self._next_piece = 1 + max((_piece_number(piece) for piece in pieces), default=0)
        sources = [self.output, *pieces] if self.output.exists() else pieces
        for source in sources:
            for index, record, _ in read_records(source, self.records):
                if self.records.answered(record):
                    self.answered.add(index)
        log.info(
            "%s: %d results from earlier tries (%d pieces%s) under work key %s…",
            self.output,
            self.answered.count,
            len(pieces),
            ", and the joined file" if self.output.exists() else "",
            self.key[:12],
        )
        return self.answered

    def _manifest(self) -> dict[str, Any]:
        path = self.parts / MANIFEST
        if not path.exists():
            return {}
        try:
            with _open(path, "r") as file:
                manifest = json.loads(file.read())
        except ValueError:
            return {}
        return manifest if isinstance(manifest, dict) else {}

    def _write_manifest(self, output: dict[str, Any] | None = None) -> None:
        """Record the work key, and once joined, the final file this store wrote (``output``)."""
        manifest = {"format": MANIFEST_FORMAT, "key": self.key, "work": self.work, "output": output}
        with _open(self.parts / MANIFEST, "w") as file:
            file.write(json.dumps(manifest, sort_keys=True, default=str) + "\n")

    def _fingerprint(self) -> dict[str, Any]:
        """Tell the output file as the store sees it: its size and its ETag (S3) or modification time."""
        info = self.output.fs.info(self.output.path)
        tag = next(
            (info[k] for k in ("ETag", "etag", "mtime", "LastModified", "updated") if info.get(k)), None
        )
        return {"size": info.get("size"), "tag": str(tag)}

    def _not_ours(self, manifest: dict[str, Any], pieces: list[StorePath]) -> bool:
        """
        Refuse a file at the output (or pieces beside it) that no manifest of this store vouches for.

        With ``replace_output`` it is not refused but reported (True): it will be replaced, and none of
        it taken as results. A manifest before format 2 did not record the final file: its output is
        trusted as the store's own (it is where that version wrote).
        """
        problem = ""
        if not manifest and pieces:
            problem = f"{self.parts} holds {len(pieces)} piece(s) but no manifest this provider wrote"
        elif self.output.exists():
            if not manifest:
                problem = "a file this provider did not write is there (no manifest beside it)"
            elif (
                manifest.get("format", 1) >= MANIFEST_FORMAT and manifest.get("output") != self._fingerprint()
            ):
                problem = "the file there changed since this provider wrote it"
        if problem and not self.replace_output:
            raise InvalidEndpointArgumentError(
                "output_path",
                f"{self.output}: {problem}; it is left untouched",
                "choose another output_path, or set replace_output=True to replace it",
            )
        if problem:
            log.warning("%s: %s; replacing it, as replace_output allows", self.output, problem)
        return bool(problem)

    # -- the claim: one work writes an output at a time ----------------------------------------

    def _claims(self) -> list[StorePath]:
        _forget_listings(self.parts)
        try:
            found = [path for path in self.parts.iterdir() if _CLAIM.match(path.name)]
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(found, key=_claim_number)

    def _read_claim(self, claim: StorePath) -> dict[str, Any]:
        try:
            with _open(claim, "r") as file:
                found = json.loads(file.read())
        except (FileNotFoundError, ValueError):
            return {}
        return found if isinstance(found, dict) else {}

    def _claim_body(self) -> str:
        return json.dumps(
            {
                "holder": self.holder,
                "try": self.attempt,
                "key": self.key,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "renewed_at": time.time(),
                "ttl": self.settings.claim_ttl,
            }
        )

    def _take_claim(self) -> None:
        """Claim the output: the next claim number, created only if absent, else refused with who holds it."""
        claims = self._claims()
        number = 1
        if claims:
            newest = self._read_claim(claims[-1])
            age = time.time() - float(newest.get("renewed_at", 0) or 0)
            ttl = float(newest.get("ttl", self.settings.claim_ttl) or 0)
            if newest and newest.get("holder") != self.holder and age < ttl:
                raise OutputClaimedError(
                    f"{self.output} is being written by {newest.get('holder') or 'another task'} (try "
                    f"{newest.get('try')}, on {newest.get('host')}; renewed {age:.0f} s ago, it lapses "
                    f"{ttl - age:.0f} s after its last renewal if that task died). Fix: give each task its "
                    "own output_path (e.g. with {{ run_id }} and the map index in it), or run the two apart"
                )
            if newest.get("holder") != self.holder:
                log.warning(
                    "%s: taking over a claim not renewed for %.0f s (its task is gone)", self.output, age
                )
            number = _claim_number(claims[-1]) + 1
        claim = self.parts / f"claim-{number:06d}.json"
        try:
            with _open(claim, "xb") as file:  # created only if absent: S3 If-None-Match, O_EXCL on a disk
                file.write(self._claim_body().encode())
        except FileExistsError:
            raise OutputClaimedError(
                f"{self.output} was claimed by another task at the same moment. Fix: give each task its own "
                "output_path"
            ) from None
        self._claim, self._claim_renewed = claim, time.monotonic()
        for older in claims:
            _remove(older)

    def _check_claim(self) -> None:
        """Make sure the claim is still this store's (the newest): before a commit and the final move."""
        if self._claim is None:
            return
        claims = self._claims()
        if not claims or claims[-1].name != self._claim.name:
            taker = self._read_claim(claims[-1]).get("holder") if claims else None
            raise OutputClaimedError(
                f"{self.output} was taken over by {taker or 'another task'} while this one wrote: it stops, "
                "and what it wrote stays under its own try's pieces"
            )
        if time.monotonic() - self._claim_renewed >= self.settings.claim_ttl / 3:
            with _open(self._claim, "w") as file:
                file.write(self._claim_body())
            self._claim_renewed = time.monotonic()

    def release(self) -> None:
        """Give the output up (after the batch, however it ended): the next work may claim it at once."""
        claim, self._claim = self._claim, None
        if claim is not None and self._read_claim(claim).get("holder") == self.holder:
            _remove(claim)

    def _listed_pieces(self) -> list[StorePath]:
        try:
            found = [path for path in self.parts.iterdir() if _PIECE.match(path.name)]
        except (FileNotFoundError, NotADirectoryError):  # none yet (an object store has no empty folders)
            return []
        return sorted(found, key=_piece_number)

    def _abort_open_uploads(self) -> None:
        """
        Abort multipart uploads a killed try left under the output (S3 bills them until removed).

        Best effort: a role without ``s3:ListBucketMultipartUploads`` gets a warning, not a failed task.
        """
        fs = self.output.fs
        if not hasattr(fs, "call_s3"):  # only S3 (s3fs) has multipart uploads to abort
            return
        bucket, _, key = self.output.path.partition("/")
        page: dict[str, str] = {}
        try:
            while True:
                listing = fs.call_s3("list_multipart_uploads", Bucket=bucket, Prefix=key, **page)
                for upload in listing.get("Uploads", []):
                    if upload["Key"] == key or upload["Key"].startswith(f"{key}.parts/"):
                        fs.call_s3(
                            "abort_multipart_upload",
                            Bucket=bucket,
                            Key=upload["Key"],
                            UploadId=upload["UploadId"],
                        )
                        log.warning("Aborted an upload a killed try left open: %s/%s", bucket, upload["Key"])
                if not listing.get("IsTruncated"):
                    return
                page = {
                    "KeyMarker": listing["NextKeyMarker"],
                    "UploadIdMarker": listing["NextUploadIdMarker"],
                }
        except Exception as exc:  # best effort (permissions): never in the way of the batch
            log.warning("Could not look for uploads a killed try left open under %s: %s", self.output, exc)

    # -- committing ----------------------------------------------------------------------------

    def add(self, record: dict[str, Any]) -> None:
        """Keep one result (a record of the store's format: ``{"index", "output"}`` by default); commit a full piece."""
        if not self._open:
            self._opened_at = time.monotonic()
        line = json.dumps(record) + "\n"
        self._open.append(line)
        self._open_bytes += len(line)
        index = self.records.index(record)
        if index is not None and self.records.answered(record):
            self.answered.add(index)
        if len(self._open) >= self.settings.max_results or self._open_bytes >= self.settings.max_bytes:
            self._commit()

    async def keep_committing(self) -> None:
        """
        Commit the open piece once it has been open ``max_seconds``, and renew the claim in time.

        Runs beside the batch; cancel it after.
        """
        step = min(1.0, self.settings.max_seconds / 4, self.settings.claim_ttl / 6)
        while True:
            await asyncio.sleep(step)
            if self._open and time.monotonic() - self._opened_at >= self.settings.max_seconds:
                self._commit()
            elif time.monotonic() - self._claim_renewed >= self.settings.claim_ttl / 3:
                self._check_claim()

    def _commit(self) -> None:
        """Write the open piece whole: on S3 a single PUT, visible whole or not at all."""
        self._check_claim()
        piece = self.parts / f"part-{self._next_piece:06d}-t{self.attempt}.jsonl"
        with _open(piece, "w") as file:
            file.write("".join(self._open))
        self._next_piece += 1
        self._pieces.append(piece)
        self._open, self._open_bytes = [], 0

    def close(self) -> None:
        """Commit the open piece (always: after a success, a failure or a stop)."""
        if self._open:
            self._commit()

    # -- finishing -----------------------------------------------------------------------------

    def finish(self) -> int:
        """
        Join everything into one JSON Lines object at ``output`` and remove the pieces.

        Each index appears once: its output, else its error. The joined file is written in the pieces'
        folder and moved into place (a rename on a disk, a server-side copy on S3), so ``output`` is
        never a partial file, even when the join fails half-way. Returns how many records it holds.
        """
        self._check_claim()
        sources = [self.output, *self._pieces] if self.output.exists() else list(self._pieces)
        if sources == [self.output]:  # a finished file, nothing new: keep it as it is
            return sum(1 for _ in read_records(self.output, self.records))
        written = IndexSet()
        joined = self.parts / "joined.jsonl.tmp"
        with _open(joined, "w", block_size=JOIN_BLOCK_BYTES) as file:  # flat memory, however large
            chunk: list[str] = []  # about 1 MiB a write, however large the records
            size = 0
            for source in sources:
                for index, record, line in read_records(source, self.records):
                    if index in written or (not self.records.answered(record) and index in self.answered):
                        continue
                    written.add(index)
                    chunk.append(line)  # as it was written: one JSON object a line
                    size += len(line)
                    if size >= JOIN_WRITE_BYTES:
                        file.write("".join(chunk))
                        chunk, size = [], 0
            file.write("".join(chunk))
        self.output.fs.mv(joined.path, self.output.path)
        _forget_listings(self.output)
        self._write_manifest(self._fingerprint())  # vouches for this file (and only this version of it)
        for piece in self._pieces:
            piece.unlink()
        log.info("%s: %d results joined from %d pieces", self.output, written.count, len(self._pieces))
        return written.count


def _piece_number(path: StorePath) -> int:
    match = _PIECE.match(path.name)
    return int(match.group(1)) if match else 0


def _claim_number(path: StorePath) -> int:
    match = _CLAIM.match(path.name)
    return int(match.group(1)) if match else 0


def _remove(path: StorePath) -> None:
    """Remove one of the store's own objects, if it is still there (another try may have removed it)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _forget_listings(path: StorePath) -> None:
    """Drop fsspec's cached listings: another process (an earlier try) may have written since."""
    invalidate = getattr(path.fs, "invalidate_cache", None)
    if invalidate is not None:
        invalidate()
