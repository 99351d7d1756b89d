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

Paths are ``pathlib``-like objects over fsspec (Airflow's ``ObjectStoragePath``): this module needs no
Airflow. Its own objects are read and written through the path's filesystem (``path.fs``), not the
path's ``open()``: Airflow's wrapper would report every piece, and every write, to its lineage collector.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterator

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
_PIECE = re.compile(r"^part-(\d+)-t(\d+)\.jsonl$")
#: a change of how the key is computed or of the pieces' format changes this
KEY_VERSION = 1


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


def work_key(**parts: Any) -> str:
    """Compute the work key: a SHA-256 of what decides the results (JSON with sorted keys: order-free)."""
    text = json.dumps({"version": KEY_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class InputsDigest:
    """A running SHA-256 of the jobs, fed one by one while they are checked (no second pass)."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.count = 0

    def add(self, job: Any) -> None:
        self._hash.update(json.dumps(job, sort_keys=True).encode() + b"\n")
        self.count += 1

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


#: the joined file's upload parts on an object store (s3fs buffers one in memory; its default is 50 MiB)
JOIN_BLOCK_BYTES = 8 * 1024 * 1024


def _open(path: StorePath, mode: str, **options: Any) -> Any:
    """Open through the path's filesystem (see the module's docstring)."""
    return path.fs.open(path.path, mode, **options)


def read_records(path: StorePath) -> Iterator[dict[str, Any]]:
    """Yield the complete records of a JSON Lines file: a torn last line (a write cut short) is skipped."""
    with _open(path, "r") as lines:
        for line in iter(lines.readline, ""):  # Airflow 3.0's files cannot be iterated
            if not line.endswith("\n"):
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("index"), int):
                yield record


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
    :param settings: when pieces are committed.
    """

    def __init__(
        self,
        output: StorePath,
        work: dict[str, Any],
        attempt: int,
        settings: CommitSettings,
    ) -> None:
        self.output = output
        self.parts: StorePath = output.parent / f"{output.name}.parts"
        self.work = work
        self.key = work_key(**work)
        self.attempt = attempt
        self.settings = settings
        self.answered = IndexSet()  # indices with an output (not an error), earlier tries included
        self._pieces: list[StorePath] = []
        self._next_piece = 1
        self._open: list[str] = []
        self._open_bytes = 0
        self._opened_at = 0.0

    # -- resuming ------------------------------------------------------------------------------

    def resume(self) -> IndexSet:
        """Load the results earlier tries of the same work committed; remove other work's results."""
        self.parts.mkdir(parents=True, exist_ok=True)
        _forget_listings(self.parts)
        self._abort_open_uploads()
        manifest = self._manifest()
        pieces = self._listed_pieces()
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
            for record in read_records(source):
                if "output" in record:
                    self.answered.add(record["index"])
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

    def _write_manifest(self) -> None:
        manifest = {"key": self.key, "work": self.work}
        with _open(self.parts / MANIFEST, "w") as file:
            file.write(json.dumps(manifest, sort_keys=True, default=str) + "\n")

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
        """Keep one result (``{"index", "output"}`` or ``{"index", "error"}``); commit a full piece."""
        if not self._open:
            self._opened_at = time.monotonic()
        line = json.dumps(record) + "\n"
        self._open.append(line)
        self._open_bytes += len(line)
        if "output" in record:
            self.answered.add(record["index"])
        if len(self._open) >= self.settings.max_results or self._open_bytes >= self.settings.max_bytes:
            self._commit()

    async def keep_committing(self) -> None:
        """Commit the open piece once it has been open ``max_seconds``; run beside the batch, cancel after."""
        step = min(1.0, self.settings.max_seconds / 4)
        while True:
            await asyncio.sleep(step)
            if self._open and time.monotonic() - self._opened_at >= self.settings.max_seconds:
                self._commit()

    def _commit(self) -> None:
        """Write the open piece whole: on S3 a single PUT, visible whole or not at all."""
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
        sources = [self.output, *self._pieces] if self.output.exists() else list(self._pieces)
        if sources == [self.output]:  # a finished file, nothing new: keep it as it is
            return sum(1 for _ in read_records(self.output))
        written = IndexSet()
        joined = self.parts / "joined.jsonl.tmp"
        with _open(joined, "w", block_size=JOIN_BLOCK_BYTES) as file:  # flat memory, however large
            chunk: list[str] = []  # about 1 MiB a write
            for source in sources:
                for record in read_records(source):
                    index = record["index"]
                    if index in written or ("output" not in record and index in self.answered):
                        continue
                    written.add(index)
                    chunk.append(json.dumps(record) + "\n")
                    if len(chunk) >= 4096:
                        file.write("".join(chunk))
                        chunk = []
            file.write("".join(chunk))
        self.output.fs.mv(joined.path, self.output.path)
        for piece in self._pieces:
            piece.unlink()
        log.info("%s: %d results joined from %d pieces", self.output, written.count, len(self._pieces))
        return written.count


def _piece_number(path: StorePath) -> int:
    match = _PIECE.match(path.name)
    return int(match.group(1)) if match else 0


def _forget_listings(path: StorePath) -> None:
    """Drop fsspec's cached listings: another process (an earlier try) may have written since."""
    invalidate = getattr(path.fs, "invalidate_cache", None)
    if invalidate is not None:
        invalidate()
