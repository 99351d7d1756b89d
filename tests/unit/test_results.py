"""ResultStore on the local disk, through the same pathlib-over-fsspec path the operator gives it."""

from __future__ import annotations

import asyncio
import json

import pytest
from upath import UPath

from airflow_provider_hfep.inference import results
from airflow_provider_hfep.inference.results import CommitSettings, InputsDigest, ResultStore, work_key


def store(tmp_path, key: str = "k1", attempt: int = 1, **settings) -> ResultStore:
    return ResultStore(UPath(tmp_path / "out.jsonl"), {"work": key}, attempt, CommitSettings(**settings))


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_pieces_are_committed_by_count_and_joined_once_each(tmp_path):
    first = store(tmp_path, max_results=3)
    first.resume()
    for index in range(7):
        first.add({"index": index, "output": f"o{index}"})
    assert len(list((tmp_path / "out.jsonl.parts").glob("part-*"))) == 2  # 3 + 3, one open
    first.close()
    assert sorted(p.name for p in (tmp_path / "out.jsonl.parts").glob("part-*")) == [
        "part-000001-t1.jsonl",
        "part-000002-t1.jsonl",
        "part-000003-t1.jsonl",
    ]
    assert first.finish() == 7
    assert [r["index"] for r in lines(tmp_path / "out.jsonl")] == list(range(7))
    assert [p.name for p in (tmp_path / "out.jsonl.parts").iterdir()] == ["manifest.json"]


def test_a_resume_skips_a_torn_line_and_prefers_an_output_to_an_error(tmp_path):
    first = store(tmp_path)
    first.resume()
    first.add({"index": 0, "output": "a"})
    first.add({"index": 1, "error": "HTTP 500"})
    first.close()
    piece = next((tmp_path / "out.jsonl.parts").glob("part-*"))
    piece.write_text(piece.read_text() + '{"index": 2, "outp')  # a write cut short
    second = store(tmp_path, attempt=2)
    done = second.resume()
    assert (0 in done, 1 in done, 2 in done) == (True, False, False)
    second.add({"index": 1, "output": "b"})
    second.add({"index": 2, "output": "c"})
    second.close()
    assert second.finish() == 3
    assert lines(tmp_path / "out.jsonl") == [
        {"index": 0, "output": "a"},
        {"index": 1, "output": "b"},
        {"index": 2, "output": "c"},
    ]


def test_other_work_is_removed_and_a_rerun_of_the_same_work_rewrites_nothing(tmp_path):
    first = store(tmp_path, key="k1")
    first.resume()
    first.add({"index": 0, "output": "a"})
    first.close()
    first.finish()
    written = (tmp_path / "out.jsonl").stat().st_mtime_ns
    same = store(tmp_path, key="k1")
    assert 0 in same.resume()
    same.close()
    same.finish()
    assert (tmp_path / "out.jsonl").stat().st_mtime_ns == written
    other = store(tmp_path, key="k2")
    assert other.resume().count == 0
    assert not (tmp_path / "out.jsonl").exists()
    manifest = json.loads((tmp_path / "out.jsonl.parts" / "manifest.json").read_text())
    assert manifest == {"key": work_key(work="k2"), "work": {"work": "k2"}}


def test_a_join_that_fails_half_way_leaves_the_output_as_it_was(tmp_path, monkeypatch):
    first = store(tmp_path)
    first.resume()
    first.add({"index": 0, "output": "a"})
    first.close()
    first.finish()
    before = (tmp_path / "out.jsonl").read_text()
    second = store(tmp_path, attempt=2)
    second.resume()
    second.add({"index": 1, "output": "b"})
    second.close()
    reads = results.read_records

    def read_then_fail(path):
        yield from reads(path)
        if path.name.startswith("part-"):
            raise OSError("connection reset while reading a piece")

    monkeypatch.setattr(results, "read_records", read_then_fail)
    with pytest.raises(OSError, match="connection reset"):
        second.finish()
    assert (tmp_path / "out.jsonl").read_text() == before  # never a partial file
    monkeypatch.undo()
    # the retry joins the old file and the piece the failed join left
    third = store(tmp_path, attempt=3)
    assert (0 in third.resume(), 1 in third.answered) == (True, True)
    third.close()
    assert third.finish() == 2
    assert lines(tmp_path / "out.jsonl") == [{"index": 0, "output": "a"}, {"index": 1, "output": "b"}]
    assert not list((tmp_path / "out.jsonl.parts").glob("part-*"))


def test_a_piece_is_committed_before_it_outgrows_one_put(tmp_path):
    results_ = store(tmp_path, max_results=1000, max_bytes=1000)
    results_.resume()
    for index in range(10):
        results_.add({"index": index, "output": "x" * 300})
    sizes = [p.stat().st_size for p in (tmp_path / "out.jsonl.parts").glob("part-*")]
    assert sizes
    assert all(size < 1000 + 400 for size in sizes)


def test_an_open_piece_is_committed_once_it_is_old_enough(tmp_path):
    class Watched(ResultStore):
        def _commit(self) -> None:
            super()._commit()
            committed.set()

    committed = asyncio.Event()
    watched = Watched(
        UPath(tmp_path / "out.jsonl"), {"work": "k1"}, 1, CommitSettings(max_results=1000, max_seconds=0.05)
    )
    watched.resume()

    async def main() -> None:
        committing = asyncio.ensure_future(watched.keep_committing())
        watched.add({"index": 0, "output": "a"})
        await committed.wait()  # no result more: the piece was committed for its age
        committing.cancel()

    asyncio.run(asyncio.wait_for(main(), 30))
    assert len(list((tmp_path / "out.jsonl.parts").glob("part-*"))) == 1


def test_the_work_key_follows_what_decides_the_results():
    digest, other = InputsDigest(), InputsDigest()
    for job in ("a", {"inputs": "b", "parameters": {"x": 1, "y": 2}}):
        digest.add(job)
    for job in ("a", {"parameters": {"y": 2, "x": 1}, "inputs": "b"}):
        other.add(job)
    assert digest.hexdigest() == other.hexdigest()  # key order inside a job does not matter
    base = {"inputs_sha256": digest.hexdigest(), "task": "text-generation", "parameters": {"t": 1}}
    assert work_key(**base) == work_key(**dict(reversed(list(base.items()))))
    assert work_key(**base) != work_key(**{**base, "parameters": {"t": 2}})


@pytest.mark.parametrize("count", [0, 1])
def test_closing_commits_only_what_is_open(tmp_path, count):
    results = store(tmp_path)
    results.resume()
    for index in range(count):
        results.add({"index": index, "output": "x"})
    results.close()
    assert len(list((tmp_path / "out.jsonl.parts").glob("part-*"))) == count
