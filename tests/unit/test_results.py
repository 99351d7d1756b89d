"""ResultStore on the local disk, through the same pathlib-over-fsspec path the operator gives it."""

from __future__ import annotations

import asyncio
import json

import pytest
from upath import UPath

from airflow_provider_hfep.endpoints.errors import InvalidEndpointArgumentError
from airflow_provider_hfep.inference import results
from airflow_provider_hfep.inference.inputs import InputsDigest
from airflow_provider_hfep.inference.results import (
    CommitSettings,
    OutputClaimedError,
    ResultStore,
    store_identity,
    work_key,
)

from tests.helpers import wait_until


def store(
    tmp_path,
    key: str = "k1",
    attempt: int = 1,
    holder: str = "dag/task/run/-1",
    replace: bool = False,
    **settings,
) -> ResultStore:
    return ResultStore(
        UPath(tmp_path / "out.jsonl"),
        {"work": key},
        attempt,
        CommitSettings(**settings),
        holder=holder,
        replace_output=replace,
    )


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
    first.release()
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
    assert manifest == {"format": 2, "key": work_key(work="k2"), "work": {"work": "k2"}, "output": None}


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

    def read_then_fail(path, *records):
        yield from reads(path, *records)
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
    aging = store(tmp_path, max_results=1000, max_seconds=0.05)
    aging.resume()

    def pieces() -> list:
        return list((tmp_path / "out.jsonl.parts").glob("part-*"))

    async def main() -> None:
        committing = asyncio.ensure_future(aging.keep_committing())
        aging.add({"index": 0, "output": "a"})
        # no result more: the event is the piece, committed for its age, on the disk
        await asyncio.to_thread(wait_until, pieces, "the piece to be committed", limit=30, every=0.01)
        committing.cancel()

    asyncio.run(main())
    assert [lines(piece) for piece in pieces()] == [[{"index": 0, "output": "a"}]]


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


# -- nothing it did not write is touched; one writer at a time -------------------------------------


def test_a_file_the_provider_did_not_write_is_refused_and_left_untouched(tmp_path):
    (tmp_path / "out.jsonl").write_text("yesterday's report, by another tool\n")
    with pytest.raises(InvalidEndpointArgumentError, match="did not write.*replace_output=True"):
        store(tmp_path).resume()
    assert (tmp_path / "out.jsonl").read_text() == "yesterday's report, by another tool\n"
    replacing = store(tmp_path, replace=True)
    assert replacing.resume().count == 0  # allowed explicitly: replaced, as other work would be
    assert not (tmp_path / "out.jsonl").exists()


def test_pieces_without_a_manifest_and_a_file_changed_since_are_not_taken_as_ours(tmp_path):
    parts = tmp_path / "out.jsonl.parts"
    parts.mkdir()
    (parts / "part-000001-t1.jsonl").write_text('{"index": 0, "output": "not ours"}\n')
    with pytest.raises(InvalidEndpointArgumentError, match="no manifest"):
        store(tmp_path).resume()
    assert (parts / "part-000001-t1.jsonl").exists()
    (parts / "part-000001-t1.jsonl").unlink()
    first = store(tmp_path)
    first.resume()
    first.add({"index": 0, "output": "a"})
    first.close()
    first.finish()
    first.release()
    (tmp_path / "out.jsonl").write_text("edited by hand after the provider wrote it\n")
    with pytest.raises(InvalidEndpointArgumentError, match="changed since this provider wrote it"):
        store(tmp_path, key="k2").resume()
    assert (tmp_path / "out.jsonl").read_text() == "edited by hand after the provider wrote it\n"


def test_a_manifest_from_before_version_0_5_still_vouches_for_its_output(tmp_path):
    parts = tmp_path / "out.jsonl.parts"
    parts.mkdir()
    (parts / "manifest.json").write_text(json.dumps({"key": "old", "work": {}}))
    (tmp_path / "out.jsonl").write_text('{"index": 0, "output": "a"}\n')
    assert store(tmp_path).resume().count == 0  # other work of its own: started afresh, as before
    assert not (tmp_path / "out.jsonl").exists()


def test_a_second_writer_is_refused_while_the_first_holds_the_output(tmp_path):
    first = store(tmp_path, holder="nightly/infer/run-1/0")
    first.resume()
    first.add({"index": 0, "output": "mine"})
    with pytest.raises(OutputClaimedError, match="being written by nightly/infer/run-1/0"):
        store(tmp_path, key="k2", holder="nightly/infer/run-1/1").resume()
    first.close()
    assert first.finish() == 1  # untouched by the refused one
    first.release()
    second = store(tmp_path, key="k2", holder="nightly/infer/run-1/1")
    assert second.resume().count == 0  # released: the next work may go (and replaces ours, its own kind)


def test_a_retry_takes_its_claim_over_and_anyone_takes_a_lapsed_one(tmp_path):
    first = store(tmp_path, holder="a", claim_ttl=60)
    first.resume()  # killed: never released
    retry = store(tmp_path, holder="a", attempt=2, claim_ttl=60)
    retry.resume()  # the same task instance: at once
    claims = sorted(p.name for p in (tmp_path / "out.jsonl.parts").glob("claim-*"))
    assert claims == ["claim-000002.json"]
    lapsed = json.loads((tmp_path / "out.jsonl.parts" / claims[0]).read_text())
    lapsed["renewed_at"] -= 61
    (tmp_path / "out.jsonl.parts" / claims[0]).write_text(json.dumps(lapsed))
    other = store(tmp_path, key="k2", holder="b", claim_ttl=60)
    other.resume()
    assert sorted(p.name for p in (tmp_path / "out.jsonl.parts").glob("claim-*")) == ["claim-000003.json"]


def test_a_writer_whose_claim_was_taken_over_stops_before_it_mixes_anything(tmp_path):
    first = store(tmp_path, holder="a", max_results=2)
    first.resume()
    first.add({"index": 0, "output": "a0"})
    retry = store(tmp_path, holder="a", attempt=2)  # e.g. the scheduler retried a task it thought lost
    retry.resume()
    with pytest.raises(OutputClaimedError, match="taken over"):
        first.add({"index": 1, "output": "a1"})  # its commit checks the claim first
    with pytest.raises(OutputClaimedError, match="taken over"):
        first.finish()
    retry.add({"index": 0, "output": "r0"})
    retry.close()
    assert retry.finish() == 1
    assert lines(tmp_path / "out.jsonl") == [{"index": 0, "output": "r0"}]


def test_two_writers_racing_for_an_empty_output_get_one_claim(tmp_path, monkeypatch):
    """Both see no claim, both create claim 1: the exclusive create lets exactly one through."""
    first, second = store(tmp_path, holder="a"), store(tmp_path, key="k2", holder="b")
    (tmp_path / "out.jsonl.parts").mkdir()
    monkeypatch.setattr(ResultStore, "_claims", lambda self: [])  # the race: neither sees the other's
    first.resume()
    with pytest.raises(OutputClaimedError, match="at the same moment"):
        second.resume()


def test_one_object_however_it_is_spelled(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.jsonl").write_text("")
    (tmp_path / "link.jsonl").symlink_to(tmp_path / "in.jsonl")
    spellings = [UPath("in.jsonl"), UPath(tmp_path / "in.jsonl"), UPath(tmp_path / "link.jsonl")]
    assert len({store_identity(path) for path in spellings}) == 1
    assert store_identity(UPath("s3://conn_id@bucket/key.jsonl")) == store_identity(
        UPath("s3://bucket/key.jsonl")
    )
