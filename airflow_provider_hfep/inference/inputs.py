"""
Reading a batch's jobs: from a list, or a JSON Lines file, each checked before any request (no Airflow).

A job that cannot be sent is refused with where it is (its index, or its line number) and what to do:
a line too long, not UTF-8, not JSON, or nested deeper than anything real, and whatever the task's own
check refuses. The file is read in bounded chunks: a line with no end never fills the memory.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any, BinaryIO

from airflow_provider_hfep.endpoints.errors import InvalidEndpointArgumentError
from airflow_provider_hfep.inference.tasks import MAX_NESTING, nesting_depth

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

#: bytes read from a file at a time
CHUNK_BYTES = 64 * 1024


def lines_of(file: BinaryIO, limit: int) -> Iterator[bytes]:
    """
    Yield the lines of a binary file (with their newline), reading at most ``limit + 1`` bytes of any line.

    A line longer than ``limit`` is yielded cut to ``limit + 1`` bytes, and nothing after it: the caller
    refuses it.
    """
    pending = bytearray()
    while chunk := file.read(CHUNK_BYTES):
        pending += chunk
        start = 0
        while (end := pending.find(b"\n", start)) >= 0:
            yield bytes(pending[start : end + 1])
            start = end + 1
        del pending[:start]
        if len(pending) > limit:
            yield bytes(pending[: limit + 1])
            return
    if pending:
        yield bytes(pending)


def jobs_of_lines(
    file: BinaryIO, max_line_bytes: int, field: str = "input_path"
) -> Iterator[tuple[int, Any]]:
    """
    Yield ``(index, job)`` for each non-blank line of a JSON Lines file.

    :param file: the file, opened in binary mode.
    :param max_line_bytes: bytes of one line at most.
    :param field: the argument the file came from, named in refusals.
    """

    def refuse(number: int, problem: str, fix: str) -> InvalidEndpointArgumentError:
        return InvalidEndpointArgumentError(field, f"line {number} {problem}", fix)

    index = 0
    for number, raw in enumerate(lines_of(file, max_line_bytes), start=1):
        if len(raw.rstrip(b"\r\n")) > max_line_bytes:
            raise refuse(
                number, f"is longer than {max_line_bytes} bytes", "split the job, or raise max_input_bytes"
            )
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise refuse(
                number, f"is not UTF-8 ({exc.reason} at byte {exc.start})", "write the file in UTF-8"
            ) from None
        if not line.strip():
            continue
        try:
            job = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise refuse(
                number,
                f"is not JSON ({str(exc)[:200] or type(exc).__name__})",
                "write one JSON value (a string or an object) per line",
            ) from None
        if nesting_depth(job) > MAX_NESTING:
            raise refuse(number, f"nests deeper than {MAX_NESTING} levels", "flatten the job")
        yield index, job
        index += 1


def jobs_of_list(jobs: Any) -> list[Any]:
    """Check a list of jobs as given (``inputs``): a list, none nested deeper than anything real."""
    if not isinstance(jobs, (list, tuple)):
        raise InvalidEndpointArgumentError(
            "inputs", f"expected a list, got {type(jobs).__name__}", "pass a list of jobs"
        )
    for index, job in enumerate(jobs):
        if nesting_depth(job) > MAX_NESTING:
            raise InvalidEndpointArgumentError(
                f"inputs[{index}]", f"nests deeper than {MAX_NESTING} levels", "flatten the job"
            )
    return list(jobs)


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


def checked_jobs(
    jobs: Callable[[], Iterable[tuple[int, Any]]], check: Callable[[int, Any], None]
) -> InputsDigest:
    """
    Check every job with ``check`` (index, job), in a first pass over ``jobs()``; return their digest and count.

    Nothing is sent before every job is checked: a bad one on the last line fails the batch before
    the first request, not after the others were paid for.
    """
    digest = InputsDigest()
    for index, job in jobs():
        check(index, job)
        digest.add(job)
    return digest


def first_job(jobs: Callable[[], Iterable[tuple[int, Any]]]) -> Any:
    """Return the first job (``None`` when there is none), reading no further."""
    source = iter(jobs())
    try:
        return next(source, (None, None))[1]
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()  # a file's reader: closed now, not when collected
