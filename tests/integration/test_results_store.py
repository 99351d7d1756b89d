"""Results on a store without append, proven on a real S3 API (moto's server, through the Amazon
provider's object storage and an Airflow connection) and on the local disk: committed pieces, the
joined file, the work key, a SIGKILL mid-batch and its retry, a timeout that stops the batch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from airflow_provider_hfep.emulator import Emulator, runners
from airflow_provider_hfep.endpoints import EndpointsError, InvalidEndpointArgumentError

from tests.helpers import wait_until
from tests.integration.batch_child import TaskInstanceStub, run
from tests.integration.test_inference import TEI_EMBEDDER
from tests.moto_server import MotoS3

pytestmark = pytest.mark.integration

CONN_ID = "nightly_s3"
ROOT = Path(__file__).parents[2]
TGI_MODEL = {
    "repository": "openai-community/gpt2",
    "framework": "pytorch",
    "task": "text-generation",
    "image": {"tgi": {"url": "ghcr.io/huggingface/text-generation-inference:3.3.4"}},
}


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with MotoS3(tmp_path_factory.mktemp("moto")) as server:
        yield server


class Store:
    """One place for a test's files: the S3 bucket (through the connection) or a local folder."""

    def __init__(self, kind: str, s3: MotoS3, folder: Path) -> None:
        self.kind, self.s3, self.folder = kind, s3, folder

    def uri(self, name: str) -> str:
        return f"s3://{CONN_ID}@{self.s3.bucket}/{name}" if self.kind == "s3" else str(self.folder / name)

    def put(self, name: str, text: str) -> None:
        if self.kind == "s3":
            self.s3.client().put_object(Bucket=self.s3.bucket, Key=name, Body=text.encode())
        else:
            (self.folder / name).parent.mkdir(parents=True, exist_ok=True)
            (self.folder / name).write_text(text)

    def names(self, prefix: str) -> list[str]:
        if self.kind == "s3":
            return self.s3.keys(prefix)
        found = (str(path.relative_to(self.folder)) for path in self.folder.rglob("*") if path.is_file())
        return sorted(name for name in found if name.startswith(prefix))

    def read(self, name: str) -> str:
        return self.s3.read(name).decode() if self.kind == "s3" else (self.folder / name).read_text()

    def exists(self, name: str) -> bool:
        return name in self.names(name)

    def records(self, name: str) -> list[dict]:
        return [json.loads(line) for line in self.read(name).splitlines()]

    def pieces(self, name: str) -> list[str]:
        return [key for key in self.names(f"{name}.parts/") if key.rsplit("/", 1)[-1].startswith("part-")]


@pytest.fixture(params=["s3", "local"])
def store(request, s3, tmp_path, monkeypatch):
    s3.reset()
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", s3.airflow_connection())
    return Store(request.param, s3, tmp_path)


def jobs_text(count: int, prefix: str = "night job") -> str:
    return "".join(json.dumps(f"{prefix} {i}") + "\n" for i in range(count))


def test_results_are_committed_in_pieces_and_joined_into_one_file(cloud, store):
    cloud.seed_endpoint("gen")
    store.put("in/jobs.jsonl", jobs_text(120))
    result, xcom = run(
        task="text-generation",
        input_path=store.uri("in/jobs.jsonl"),
        output_path=store.uri("out/results.jsonl"),
        commit_max_results=25,
    )
    records = store.records("out/results.jsonl")
    assert sorted(r["index"] for r in records) == list(range(120))
    assert all(r["output"] == runners.generate_text(f"night job {r['index']}") for r in records)
    assert store.names("out/results.jsonl.parts/") == ["out/results.jsonl.parts/manifest.json"]
    manifest = json.loads(store.read("out/results.jsonl.parts/manifest.json"))
    assert manifest["work"]["inputs"] == 120
    assert manifest["work"]["engine"] == "tgi"
    assert manifest["work"]["task"] == "text-generation"
    assert xcom["summary"]["succeeded"] == 120
    assert result["output_path"] == store.uri("out/results.jsonl")
    if store.kind == "s3":
        assert store.s3.open_uploads() == []
    # a rerun of the same work sends nothing and leaves the file as it is
    cloud.clear_requests()
    again, _ = run(
        task="text-generation",
        input_path=store.uri("in/jobs.jsonl"),
        output_path=store.uri("out/results.jsonl"),
    )
    assert cloud.requests("inference") == []
    assert again["summary"]["reused"] == 120
    assert store.records("out/results.jsonl") == records


@pytest.mark.parametrize(
    "change",
    ["parameters", "inputs", "model"],
)
def test_results_of_other_work_are_not_reused(cloud, store, change, caplog):
    cloud.seed_endpoint("gen")
    store.put("in/jobs.jsonl", jobs_text(30))
    arguments = {
        "task": "text-generation",
        "input_path": store.uri("in/jobs.jsonl"),
        "output_path": store.uri("out/results.jsonl"),
        "parameters": {"max_new_tokens": 8},
    }
    run(**arguments)
    if change == "parameters":
        arguments["parameters"] = {"max_new_tokens": 9}
    elif change == "inputs":
        store.put("in/jobs.jsonl", jobs_text(30, prefix="another night"))
    else:
        # the same model at another revision (an endpoint's name is not part of the key)
        cloud.seed_endpoint(
            "pinned", model={**cloud.endpoint("gen")["model"], "revision": "0123456789abcdef"}
        )
        arguments["endpoint_name"] = "pinned"
    cloud.clear_requests()
    with caplog.at_level("WARNING"):
        again, _ = run(**arguments)
    assert len(cloud.requests("inference")) == 30  # every input again
    assert again["summary"]["reused"] == 0
    assert "belong to other work" in caplog.text
    assert sorted(r["index"] for r in store.records("out/results.jsonl")) == list(range(30))


def test_a_file_the_provider_did_not_write_is_refused_before_any_request(cloud, store, caplog):
    """Yesterday's export by another tool at output_path: untouched, refused, unless replacing is asked."""
    cloud.seed_endpoint("gen")
    store.put("in/jobs.jsonl", jobs_text(10))
    store.put("out/results.jsonl", '{"index": 0, "output": "from another program"}\n')
    arguments = {
        "task": "text-generation",
        "input_path": store.uri("in/jobs.jsonl"),
        "output_path": store.uri("out/results.jsonl"),
    }
    with pytest.raises(InvalidEndpointArgumentError, match="did not write.*replace_output=True"):
        run(**arguments)
    assert cloud.requests("inference") == []
    assert store.read("out/results.jsonl") == '{"index": 0, "output": "from another program"}\n'
    with caplog.at_level("WARNING"):
        run(replace_output=True, **arguments)
    assert "belong to other work (no work key" in caplog.text
    assert len(cloud.requests("inference")) == 10
    assert "from another program" not in store.read("out/results.jsonl")


def test_the_input_file_is_never_the_output_however_it_is_spelled(cloud, s3, tmp_path, monkeypatch):
    """input_path == output_path destroyed the night's inputs; other spellings of one object too."""
    s3.reset()
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", s3.airflow_connection())
    store = Store("s3", s3, tmp_path)
    cloud.seed_endpoint("gen")
    store.put("in/jobs.jsonl", jobs_text(3))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "jobs.jsonl").write_text(jobs_text(3))
    for source, output in [
        (store.uri("in/jobs.jsonl"), store.uri("in/jobs.jsonl")),
        (store.uri("in/jobs.jsonl"), store.uri("in/jobs.jsonl").replace(f"{CONN_ID}@", "")),
        ("jobs.jsonl", str(tmp_path / "jobs.jsonl")),
    ]:
        with pytest.raises(InvalidEndpointArgumentError, match="output_path.*is the input file"):
            run(task="text-generation", input_path=source, output_path=output)
    assert cloud.requests("inference") == []
    assert store.read("in/jobs.jsonl") == jobs_text(3)
    assert (tmp_path / "jobs.jsonl").read_text() == jobs_text(3)


def test_a_role_that_may_not_list_uploads_still_runs_its_batch(cloud, s3, monkeypatch, caplog):
    import s3fs

    s3.reset()
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", s3.airflow_connection())
    cloud.seed_endpoint("gen")
    call_s3 = s3fs.S3FileSystem.call_s3

    def refuse_listing(fs, method, *args, **kwargs):
        if method == "list_multipart_uploads":
            raise PermissionError("Access Denied (s3:ListBucketMultipartUploads)")
        return call_s3(fs, method, *args, **kwargs)

    monkeypatch.setattr(s3fs.S3FileSystem, "call_s3", refuse_listing)
    with caplog.at_level("WARNING"):
        result, _ = run(
            task="text-generation", inputs=["a", "b"], output_path=f"s3://{CONN_ID}@{s3.bucket}/out/r.jsonl"
        )
    assert result["summary"]["succeeded"] == 2
    assert "Could not look for uploads a killed try left open" in caplog.text


def test_an_upload_a_killed_try_left_open_is_aborted(cloud, s3, monkeypatch):
    s3.reset()
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", s3.airflow_connection())
    cloud.seed_endpoint("gen")
    s3.client().create_multipart_upload(Bucket=s3.bucket, Key="out/results.jsonl")
    s3.client().create_multipart_upload(Bucket=s3.bucket, Key="somebody-elses.bin")
    run(
        task="text-generation", inputs=["a", "b"], output_path=f"s3://{CONN_ID}@{s3.bucket}/out/results.jsonl"
    )
    assert [upload["Key"] for upload in s3.open_uploads()] == ["somebody-elses.bin"]


@pytest.fixture(scope="module")
def slow_cloud():
    """A data plane slow enough (20 ms a request) to catch a 3,000-input batch half-way."""
    with Emulator(latency_ms=20) as emulator:
        yield emulator


def test_a_batch_killed_half_way_is_resumed_without_paying_twice(slow_cloud, store, monkeypatch):
    total, piece, concurrency = 3000, 100, 16
    cloud = slow_cloud
    cloud.reset()
    cloud.seed_endpoint("gen")
    store.put("in/jobs.jsonl", jobs_text(total))
    arguments = {
        "task": "text-generation",
        "input_path": store.uri("in/jobs.jsonl"),
        "output_path": store.uri("out/results.jsonl"),
        "commit_max_results": piece,
        "max_concurrency": concurrency,
    }
    monkeypatch.setenv("AIRFLOW_CONN_HF_INFERENCE_ENDPOINTS_DEFAULT", cloud.airflow_connection())
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.batch_child", json.dumps(arguments)],
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
    )

    def half_answered() -> bool:  # the event
        assert child.poll() is None, "the batch ended before it was killed"
        return cloud.billing("gen")["requests"] >= total // 2

    try:
        wait_until(half_answered, "half the inputs answered", limit=240, every=0.01)
        os.killpg(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    answered = Counter(r["json"]["inputs"] for r in cloud.requests("inference") if r["status"] == 200)
    committed = {
        record["index"]
        for name in store.pieces("out/results.jsonl")
        for record in map(json.loads, store.read(name).splitlines())
    }
    assert not store.exists("out/results.jsonl")  # nothing joined: the batch never finished
    cloud.clear_requests()
    result, _ = run(try_number=2, **arguments)
    resent = [r["json"]["inputs"] for r in cloud.requests("inference")]
    paid_twice = sum(1 for prompt in resent if prompt in answered)
    print(
        f"\n[{store.kind}] {total} inputs killed half-way: answered {len(answered)}, committed "
        f"{len(committed)}, retry sent {len(resent)}, answered inputs paid twice {paid_twice}"
    )
    assert result["summary"]["reused"] == len(committed)
    assert len(resent) == total - len(committed)  # every input without a committed result, once
    assert len(set(resent)) == len(resent)
    # lost at the kill: the open piece, and the answers on their way to the client
    assert paid_twice <= piece + concurrency
    records = store.records("out/results.jsonl")
    assert Counter(r["index"] for r in records) == Counter(range(total))
    assert all(r["output"] == runners.generate_text(f"night job {r['index']}") for r in records)
    assert store.pieces("out/results.jsonl") == []
    if store.kind == "s3":
        assert store.s3.open_uploads() == []


def test_a_failed_batch_keeps_its_pieces_for_the_retry(cloud, store):
    cloud.seed_endpoint("gen")
    cloud.set_faults([{"scope": "inference", "kind": "500", "rate": 1.0, "count": 5}])
    with pytest.raises(EndpointsError, match="5 of 40 inputs failed"):
        run(
            task="text-generation",
            inputs=[f"p{i}" for i in range(40)],
            output_path=store.uri("out/results.jsonl"),
            max_retries=0,
            max_concurrency=1,
        )
    assert not store.exists("out/results.jsonl")
    assert store.pieces("out/results.jsonl")
    cloud.clear_requests()
    run(
        task="text-generation",
        inputs=[f"p{i}" for i in range(40)],
        output_path=store.uri("out/results.jsonl"),
    )
    assert len(cloud.requests("inference")) == 5
    records = store.records("out/results.jsonl")
    assert sorted(r["index"] for r in records) == list(range(40))
    assert all("output" in r for r in records)


def test_lineage_names_the_files_the_endpoint_and_the_model(cloud, store):
    from openlineage.client.serde import Serde

    from airflow_provider_hfep.operators.inference import HuggingFaceEndpointInferenceOperator

    cloud.seed_endpoint("gen", model={**TGI_MODEL, "revision": "c0ffee"})
    store.put("in/jobs.jsonl", jobs_text(3))
    operator = HuggingFaceEndpointInferenceOperator(
        task_id="infer",
        endpoint_name="gen",
        task="text-generation",
        input_path=store.uri("in/jobs.jsonl"),
        output_path=store.uri("out/results.jsonl"),
    )
    before = operator.get_openlineage_facets_on_complete(None)
    assert before.run_facets == {}  # no endpoint reached: no facet to report
    operator.execute({"ti": TaskInstanceStub()})
    lineage = operator.get_openlineage_facets_on_complete(None)
    namespace = f"s3://{store.s3.bucket}" if store.kind == "s3" else "file"
    prefix = "" if store.kind == "s3" else f"{store.folder}/"
    assert [(d.namespace, d.name) for d in lineage.inputs] == [(namespace, f"{prefix}in/jobs.jsonl")]
    assert [(d.namespace, d.name) for d in lineage.outputs] == [(namespace, f"{prefix}out/results.jsonl")]
    facet = Serde.to_dict(lineage.run_facets["huggingface_endpoint"])
    assert {key: value for key, value in facet.items() if not key.startswith("_")} == {
        "endpoint": "gen",
        "namespace": "demo",
        "repository": TGI_MODEL["repository"],
        "revision": "c0ffee",
        "engine": "tgi",
        "task": "text-generation",
    }
    assert facet["_producer"]


def test_a_task_stopped_by_airflow_commits_what_was_answered_and_fails(slow_cloud, store, monkeypatch):
    """SIGTERM (a user marks the task failed, a worker shuts down): Airflow calls on_kill()."""
    import threading

    from airflow_provider_hfep.operators.inference import HuggingFaceEndpointInferenceOperator

    cloud = slow_cloud
    cloud.reset()
    cloud.seed_endpoint("gen")
    monkeypatch.setenv("AIRFLOW_CONN_HF_INFERENCE_ENDPOINTS_DEFAULT", cloud.airflow_connection())
    operator = HuggingFaceEndpointInferenceOperator(
        task_id="infer",
        endpoint_name="gen",
        task="text-generation",
        inputs=[f"job {i}" for i in range(2000)],
        output_path=store.uri("out/results.jsonl"),
        max_concurrency=8,
    )

    def stop_half_way() -> None:
        wait_until(
            lambda: cloud.billing("gen")["requests"] >= 200, "200 inputs answered", limit=240, every=0.01
        )
        operator.on_kill()

    stopper = threading.Thread(target=stop_half_way)
    stopper.start()
    with pytest.raises(EndpointsError, match=r"The batch was stopped \(SIGTERM\)"):
        operator.execute({"ti": TaskInstanceStub()})
    stopper.join()
    answered = {r["json"]["inputs"] for r in cloud.requests("inference") if r["status"] == 200}
    committed = [
        record
        for name in store.pieces("out/results.jsonl")
        for record in map(json.loads, store.read(name).splitlines())
    ]
    assert len(answered) < 2000  # stopped, not run to the end
    assert {f"job {r['index']}" for r in committed} <= answered
    assert len(answered) - len(committed) <= 8  # only the answers on their way were lost, never a piece
    assert not store.exists("out/results.jsonl")


def test_a_joined_file_larger_than_one_upload_part_is_complete_and_leaves_no_upload(cloud, s3, monkeypatch):
    from airflow_provider_hfep.inference import results

    s3.reset()
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", s3.airflow_connection())
    monkeypatch.setattr(
        results, "JOIN_BLOCK_BYTES", 5 * 1024 * 1024
    )  # S3's smallest part: fewer inputs needed
    cloud.seed_endpoint("emb", model=TEI_EMBEDDER)
    total = 40_000  # about 6 MiB of vectors: two upload parts
    texts = [f"text {i}" for i in range(total)]
    run(
        task="feature-extraction",
        endpoint_name="emb",
        inputs=texts,
        output_path=f"s3://{CONN_ID}@{s3.bucket}/big.jsonl",
    )
    body = s3.read("big.jsonl")
    assert len(body) > 5 * 1024 * 1024
    records = [json.loads(line) for line in body.decode().splitlines()]
    assert sorted(r["index"] for r in records) == list(range(total))
    assert all(r["output"] == runners.embed(texts[r["index"]]) for r in records)
    assert s3.open_uploads() == []
    assert s3.keys("big.jsonl.parts/") == ["big.jsonl.parts/manifest.json"]


def test_a_second_work_on_the_same_output_is_refused_while_the_first_writes(slow_cloud, store, monkeypatch):
    """Two mapped instances (or two DAGs) given one output_path: before, the second overwrote the first's
    pieces and one of them succeeded with a file mixing both works. Now the second is refused before it
    sends anything, and the file holds the first's results only."""
    cloud = slow_cloud
    cloud.reset()
    cloud.seed_endpoint("gen")
    store.put("in/a.jsonl", jobs_text(1000, "work A"))
    store.put("in/b.jsonl", jobs_text(1000, "work B"))
    monkeypatch.setenv("AIRFLOW_CONN_HF_INFERENCE_ENDPOINTS_DEFAULT", cloud.airflow_connection())

    def start(work: str, map_index: int) -> subprocess.Popen[str]:
        arguments = {
            "task": "text-generation",
            "input_path": store.uri(f"in/{work}.jsonl"),
            "output_path": store.uri("out/results.jsonl"),
            "commit_max_results": 100,
            "max_concurrency": 4,
            "map_index": map_index,
        }
        return subprocess.Popen(
            [sys.executable, "-m", "tests.integration.batch_child", json.dumps(arguments)],
            cwd=ROOT,
            start_new_session=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    first = start("a", 0)

    def first_writing() -> bool:  # the event
        assert first.poll() is None, first.communicate()
        return cloud.billing("gen")["requests"] >= 100

    wait_until(first_writing, "the first to be writing", limit=240, every=0.01)
    second = start("b", 1)
    _, refused = second.communicate(timeout=120)
    assert second.returncode != 0
    assert "OutputClaimedError" in refused
    assert "is being written by batch_child/infer/manual__1/0" in refused
    out, errors = first.communicate(timeout=300)
    assert first.returncode == 0, errors
    records = store.records("out/results.jsonl")
    assert sorted(r["index"] for r in records) == list(range(1000))
    assert all(r["output"] == runners.generate_text(f"work A {r['index']}") for r in records)
    assert not any("work B" in r["json"]["inputs"] for r in cloud.requests("inference") if r["json"])


def test_two_claims_at_the_same_instant_let_one_through_on_the_store_itself(store, monkeypatch):
    """The race the listing cannot see: both create the same claim; the store's create-if-absent
    (S3's If-None-Match on moto's server; O_EXCL on a disk) lets exactly one through."""
    from airflow.sdk import ObjectStoragePath

    from airflow_provider_hfep.inference.results import CommitSettings, OutputClaimedError, ResultStore

    output = ObjectStoragePath(store.uri("out/raced.jsonl"))
    first = ResultStore(output, {"w": 1}, 1, CommitSettings(), holder="dag/a/run/0")
    second = ResultStore(output, {"w": 2}, 1, CommitSettings(), holder="dag/a/run/1")
    monkeypatch.setattr(ResultStore, "_claims", lambda self: [])  # neither sees the other's claim
    first.resume()
    with pytest.raises(OutputClaimedError, match="at the same moment"):
        second.resume()
    assert store.names("out/raced.jsonl.parts/claim-") == ["out/raced.jsonl.parts/claim-000001.json"]
