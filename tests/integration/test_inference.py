"""The batch inference operator against the emulator's data plane, directly and through dag.test()."""

from __future__ import annotations

import json
import os
from collections import Counter

import pytest

from airflow_provider_hfep.emulator import Emulator, runners
from airflow_provider_hfep.endpoints import EndpointPausedError, EndpointsError, InvalidEndpointArgumentError
from airflow_provider_hfep.operators.inference import HuggingFaceEndpointInferenceOperator

from tests.integration.batch_child import TaskInstanceStub, run

pytestmark = pytest.mark.integration

CLASSIFIER = {
    "repository": "ProsusAI/finbert",
    "framework": "pytorch",
    "task": "text-classification",
    "image": {"huggingface": {}},
}
EMBEDDER = {
    "repository": "BAAI/bge-small-en",
    "framework": "pytorch",
    "task": "feature-extraction",
    "image": {"huggingface": {}},
}
SUMMARIZER = {
    "repository": "facebook/bart-large-cnn",
    "framework": "pytorch",
    "task": "summarization",
    "image": {"huggingface": {}},
}
FILLER = {
    "repository": "bert-base-uncased",
    "framework": "pytorch",
    "task": "fill-mask",
    "image": {"huggingface": {}},
}


def expected_text(prompt: str, tokens: int = 20) -> str:
    return runners.generate_text(prompt, tokens)


def inference_requests(cloud):
    return cloud.requests("inference")


def test_text_generation_in_input_order(cloud):
    cloud.seed_endpoint("gen")
    jobs = [f"prompt {i}" for i in range(40)]
    results, xcom = run(
        task="text-generation", inputs=jobs, parameters={"max_new_tokens": 6}, max_concurrency=8
    )
    assert results == [expected_text(job, 6) for job in jobs]
    assert xcom["summary"]["count"] == 40
    assert xcom["summary"]["failed"] == 0
    sent = inference_requests(cloud)
    assert len(sent) == 40
    assert {r["path"] for r in sent} == {"/endpoints/demo/gen"}
    assert sent[0]["json"] == {"inputs": sent[0]["json"]["inputs"], "parameters": {"max_new_tokens": 6}}
    assert all(
        r["headers"].get("authorization") == "[redacted]" for r in sent
    )  # the token went there, and only there


def test_chat_completion(cloud):
    cloud.seed_endpoint("gen")
    jobs = [[{"role": "user", "content": f"Hello {i}"}] for i in range(5)] + [
        {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3}
    ]
    results, _ = run(task="chat-completion", inputs=jobs, parameters={"max_tokens": 4})
    assert results[:5] == [runners.generate_text(f"Hello {i}", 4).strip() for i in range(5)]
    assert results[5] == runners.generate_text("Hi", 3).strip()
    first = inference_requests(cloud)[0]
    assert first["path"] == "/endpoints/demo/gen/v1/chat/completions"
    assert first["json"]["stream"] is False


@pytest.mark.parametrize(
    ("model", "task", "jobs", "parameters", "expected", "body"),
    [
        (
            EMBEDDER,
            "feature-extraction",
            ["a", "b"],
            {"normalize": True},
            [runners.embed("a"), runners.embed("b")],
            {"inputs": ["a", "b"], "normalize": True},  # batched: one request for both
        ),
        (
            CLASSIFIER,
            "text-classification",
            ["good", "bad"],
            {},
            [runners.classify("good"), runners.classify("bad")],
            {"inputs": ["good", "bad"], "parameters": {}},
        ),
        (
            SUMMARIZER,
            "summarization",
            ["long text here"],
            {},
            [runners.generate_text("long text here", 8).strip()],
            {"inputs": "long text here", "parameters": {}},
        ),
        (
            FILLER,
            "fill-mask",
            ["a <mask> day"],
            {},
            [runners.fill_mask({"inputs": "a <mask> day"})],
            {"inputs": "a <mask> day", "parameters": {}},
        ),
        (
            EMBEDDER,
            "raw",
            [{"inputs": ["x", "y"]}],
            None,
            [[runners.embed("x"), runners.embed("y")]],
            {"inputs": ["x", "y"]},
        ),
    ],
    ids=["feature-extraction", "text-classification", "summarization", "fill-mask", "raw"],
)
def test_other_tasks(cloud, model, task, jobs, parameters, expected, body):
    cloud.seed_endpoint("gen", model=model)
    results, _ = run(task=task, inputs=jobs, parameters=parameters)
    assert results == expected
    assert body in [r["json"] for r in inference_requests(cloud)]  # the jobs go concurrently: any order


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"task": "text-generaton", "inputs": ["x"]}, "task"),
        ({"task": "text-generation", "inputs": ["ok", 3]}, r"inputs\[1\]"),
        ({"task": "chat-completion", "inputs": ["not messages"]}, r"inputs\[0\]"),
        ({"task": "fill-mask", "inputs": ["no mask"]}, r"inputs\[0\]"),
        ({"task": "raw", "inputs": ["not an object"]}, r"inputs\[0\]"),
        ({"task": "text-generation"}, "inputs"),
        ({"task": "text-generation", "inputs": ["x"], "input_path": "/tmp/x.jsonl"}, "inputs"),
        ({"task": "text-generation", "inputs": ["x"], "on_item_error": "ignore"}, "on_item_error"),
        ({"task": "text-generation", "inputs": ["x"], "max_concurrency": 0}, "max_concurrency"),
        ({"task": "embeddings", "inputs": ["x"], "batch_size": 0}, "batch_size"),
        ({"task": "text-generation", "inputs": ["x"], "endpoint_name": "Bad_Name"}, "endpoint_name"),
    ],
)
def test_bad_input_is_refused_before_any_request(cloud, kwargs, field):
    cloud.seed_endpoint("gen")
    with pytest.raises(InvalidEndpointArgumentError, match=f"^{field}: .*Fix: "):
        run(**kwargs)
    assert inference_requests(cloud) == []


def test_paused_endpoint_fails_at_once(cloud):
    cloud.seed_endpoint("gen", state="paused")
    with pytest.raises(EndpointPausedError, match="paused: resume it first"):
        run(task="text-generation", inputs=["x"])
    assert inference_requests(cloud) == []


def test_cold_start_from_scaled_to_zero(cloud):
    cloud.seed_endpoint("gen", state="scaledToZero")
    jobs = [f"wake {i}" for i in range(12)]
    results, xcom = run(task="text-generation", inputs=jobs, max_concurrency=4)
    assert results == [expected_text(job) for job in jobs]
    assert cloud.billing("gen")["requests"] == 12
    assert all(r["headers"].get("x-scale-up-timeout") for r in inference_requests(cloud))


@pytest.mark.parametrize("kind", ["429", "503", "502", "reset", "timeout"])
def test_faults_every_item_ends_with_exactly_one_result(cloud, kind):
    cloud.seed_endpoint("gen")
    cloud.set_faults([{"scope": "inference", "kind": kind, "rate": 0.2}], seed=7)
    jobs = [f"faulty {i}" for i in range(60)]
    timeout = {"request_timeout": 0.5} if kind == "timeout" else {}
    results, xcom = run(task="text-generation", inputs=jobs, max_concurrency=8, **timeout)
    assert results == [expected_text(job) for job in jobs]
    sent = inference_requests(cloud)
    faults = sum(1 for r in sent if r["fault"])
    assert faults > 0
    assert (
        xcom["summary"]["requests"] == len(sent) == 60 + faults
    )  # every fault retried once, nothing else resent
    assert xcom["summary"]["retries"] == faults


@pytest.mark.parametrize("states_its_limits", [True, False], ids=["stated", "probed"])
def test_overload_adapts_concurrency_without_losing_items(states_its_limits):
    """The capacity a server states (TGI's /info) is where the batch starts; one that says nothing is probed."""
    with Emulator(latency_ms=30, capacity=4, deploy_seconds=0.2) as small:
        small.seed_endpoint("gen", type="public")
        if not states_its_limits:  # /info unreadable: the batch finds the capacity by its 429s
            small.set_faults([{"scope": "server", "kind": "503"}])
        os.environ["AIRFLOW_CONN_SMALL"] = small.airflow_connection()
        try:
            results, xcom = run(
                task="text-generation",
                inputs=[f"j{i}" for i in range(200)],
                max_concurrency=32,
                hf_conn_id="small",
            )
        finally:
            del os.environ["AIRFLOW_CONN_SMALL"]
        assert results == [expected_text(f"j{i}") for i in range(200)]
        sent = small.requests("inference")
        if states_its_limits:  # never more in flight than it takes: not one 429
            assert xcom["summary"]["throttled"] == 0
            assert [r["status"] for r in sent] == [200] * 200
            assert xcom["summary"]["final_concurrency"] == 4
        else:
            assert xcom["summary"]["throttled"] > 0
            assert xcom["summary"]["final_concurrency"] <= 5
        ok = [r for r in sent if r["status"] == 200]
        assert (
            sorted(Counter(r["json"]["inputs"] for r in ok).values()) == [1] * 200
        )  # each job answered once


def test_item_errors_recorded_or_failing_after_the_rest(cloud, tmp_path):
    cloud.seed_endpoint("gen", model=EMBEDDER)
    jobs = [{"inputs": "fine"}, {"prompt": "no inputs"}, {"inputs": "also fine"}]
    results, xcom = run(task="raw", inputs=jobs, on_item_error="record")
    assert results[0] == [runners.embed("fine")]
    assert results[1] is None
    assert results[2] == [runners.embed("also fine")]
    assert xcom["errors"] == [{"index": 1, "error": "HTTP 422: Missing 'inputs' in the request body"}]
    out = tmp_path / "results.jsonl"
    with pytest.raises(EndpointsError, match=r"1 of 3 inputs failed \(the 2 others are saved\)"):
        run(task="raw", inputs=jobs, output_path=str(out))
    # a failed task leaves its committed pieces for the retry, and no joined file
    assert not out.exists()
    pieces = sorted((tmp_path / "results.jsonl.parts").glob("part-*.jsonl"))
    lines = [json.loads(line) for piece in pieces for line in piece.read_text().splitlines()]
    assert sorted(line["index"] for line in lines) == [0, 1, 2]
    assert sum("error" in line for line in lines) == 1
    # recorded: the retry sends only the failed input again, and the joined file holds each index once
    cloud.clear_requests()
    run(task="raw", inputs=jobs, output_path=str(out), on_item_error="record")
    assert len(inference_requests(cloud)) == 1
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(line["index"] for line in lines) == [0, 1, 2]
    assert sum("error" in line for line in lines) == 1
    assert not list((tmp_path / "results.jsonl.parts").glob("part-*.jsonl"))


def test_an_endpoint_failing_every_request_is_explained_from_its_log_and_replicas(cloud, capsys):
    cloud.seed_endpoint("gen")
    cloud.set_faults([{"scope": "inference", "kind": "500", "rate": 1.0}])
    with pytest.raises(EndpointsError, match=r"3 of 3 inputs failed .* Likely cause: ") as failed:
        run(task="text-generation", inputs=["a", "b", "c"])
    assert "hf_demo_token" not in str(failed.value)
    assert "Likely cause: it runs and its log shows no error" in str(failed.value)
    assert "Replica gen-" in capsys.readouterr().out  # the replicas' states, in the task log
    assert any(r["path"].endswith("/gen/logs") for r in cloud.requests("management"))
    # recorded instead of failing the task: the same story, as a warning
    cloud.clear_requests()
    results, _ = run(task="text-generation", inputs=["a", "b"], on_item_error="record")
    assert results == [None, None]
    assert "Likely cause: it runs and its log shows no error" in capsys.readouterr().out
    # one input failing on its own (a 422) is the input's trouble, not the endpoint's: no diagnosis
    cloud.clear_faults()
    cloud.clear_requests()
    with pytest.raises(EndpointsError, match="1 of 2 inputs failed") as one:
        run(task="raw", inputs=[{"inputs": "fine"}, {"prompt": "no inputs"}])
    assert "Likely cause" not in str(one.value)
    assert not any("/logs" in r["path"] for r in cloud.requests("management"))


def test_results_too_large_for_xcom_need_output_path(cloud):
    cloud.seed_endpoint("gen")
    with pytest.raises(EndpointsError, match="exceed max_xcom_bytes=200 .* Fix: set output_path"):
        run(
            task="text-generation", inputs=[f"p{i}" for i in range(50)], max_xcom_bytes=200, max_concurrency=2
        )
    assert len(inference_requests(cloud)) < 50  # it stopped instead of computing results it could not keep


def test_the_errors_pushed_to_xcom_count_toward_max_xcom_bytes(cloud):
    """Failed jobs' errors go to XCom beside the results: a batch of failures is bounded too."""
    cloud.seed_endpoint("gen")
    cloud.set_faults([{"scope": "inference", "kind": "500"}])  # every job fails, each with its error
    with pytest.raises(EndpointsError, match="exceed max_xcom_bytes=300"):
        run(
            task="text-generation",
            inputs=[f"p{i}" for i in range(50)],
            on_item_error="record",
            max_xcom_bytes=300,
            max_concurrency=2,
        )
    assert len(inference_requests(cloud)) < 50


def test_an_output_changed_since_the_provider_wrote_it_is_left_alone(cloud, tmp_path):
    cloud.seed_endpoint("gen")
    jobs_file = tmp_path / "jobs.jsonl"
    jobs_file.write_text("".join(json.dumps(f"night job {i}") + "\n" for i in range(100)))
    out = tmp_path / "a" / "new" / "folder" / "results.jsonl"  # created as needed
    first, _ = run(task="text-generation", input_path=str(jobs_file), output_path=str(out))
    assert first["summary"]["count"] == 100
    # Someone edits the results after the night: 60 kept, the 61st cut in half.
    lines = out.read_text().splitlines(keepends=True)
    edited = "".join(lines[:60]) + lines[60][:10]
    out.write_text(edited)
    cloud.clear_requests()
    with pytest.raises(InvalidEndpointArgumentError, match="changed since this provider wrote it"):
        run(task="text-generation", input_path=str(jobs_file), output_path=str(out))
    assert (out.read_text(), inference_requests(cloud)) == (edited, [])
    second, _ = run(
        task="text-generation", input_path=str(jobs_file), output_path=str(out), replace_output=True
    )
    assert (second["summary"]["reused"], second["summary"]["count"]) == (0, 100)  # none of it trusted
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["index"] for r in records) == list(range(100))  # each exactly once
    assert all(r["output"] == expected_text(f"night job {r['index']}") for r in records)


def test_mapped_over_chunks_through_dag_test(cloud, run_dag):
    cloud.seed_endpoint("gen")
    run_ = run_dag("hfep_inference_mapped")
    assert run_.state == "success"
    gathered = run_.returns["gather"]
    assert gathered == [expected_text(f"job number {i}", 5) for i in range(25)]
    assert len(inference_requests(cloud)) == 25


def test_file_to_file_through_dag_test(cloud, tmp_path, run_dag):
    cloud.seed_endpoint("gen")
    (tmp_path / "jobs.jsonl").write_text("".join(json.dumps(f"file job {i}") + "\n" for i in range(30)))
    run_ = run_dag("hfep_inference_file", conf={"dir": str(tmp_path)})
    assert run_.state == "success"
    records = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert sorted(r["index"] for r in records) == list(range(30))


def test_every_task_through_dag_test(cloud, run_dag):
    cloud.seed_endpoint("gen")
    cloud.seed_endpoint("emb", model=EMBEDDER)
    cloud.seed_endpoint("cls", model=CLASSIFIER)
    cloud.seed_endpoint("sum", model=SUMMARIZER)
    cloud.seed_endpoint("fill", model=FILLER)
    run_ = run_dag("hfep_inference_tasks")
    assert run_.state == "success"
    assert run_.returns == {
        "text_generation": [expected_text("Once upon a time"), expected_text("The batch ran")],
        "chat_completion": [runners.generate_text("Hello", 20).strip()],
        "feature_extraction": [runners.embed("embed me")],
        "text_classification": [runners.classify("I like it")],
        "summarization": [runners.generate_text("a long article about nightly batches", 8).strip()],
        "fill_mask": [runners.fill_mask({"inputs": "the night is <mask>"})],
        "raw": [[runners.embed("x"), runners.embed("y")]],
    }


def test_progress_is_logged_at_a_steady_pace(cloud, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="airflow_provider_hfep.inference.batch")
    cloud.seed_endpoint("gen")
    run(
        task="text-generation", inputs=[f"p{i}" for i in range(40)], max_concurrency=1, progress_interval=0.05
    )
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.name == "airflow_provider_hfep.inference.batch" and "/40 done (" in r.getMessage()
    ]
    assert len(lines) >= 3
    assert all(
        "/s" in line and "retries" in line and "errors" in line and "concurrency" in line for line in lines
    )
    assert any("ETA" in line for line in lines)


@pytest.mark.parametrize("scheme", ["http", "HTTP"])  # checked on the parsed URL: HTTP:// is http too
def test_plain_http_url_on_another_machine_gets_no_token(cloud, monkeypatch, scheme):
    """Only the URL the API reports is replaced, and the batch client is an in-memory one: should the
    guard ever break, the request is recorded here and no packet leaves this machine."""
    import httpx

    import airflow_provider_hfep.operators.inference as inference_module
    from airflow_provider_hfep.endpoints import InferenceEndpoint

    cloud.seed_endpoint("gen")
    sent: list[httpx.Request] = []
    monkeypatch.setattr(
        inference_module,
        "batch_client",
        lambda auth, max_concurrency, verify=True: httpx.AsyncClient(
            auth=auth, transport=httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(500))
        ),
    )
    operator = HuggingFaceEndpointInferenceOperator(
        task_id="infer", endpoint_name="gen", task="text-generation", inputs=["x"]
    )
    real = operator.hook.client.get("gen")
    raw = {**real.raw, "status": {**real.raw["status"], "url": f"{scheme}://remote.example/endpoints/gen"}}
    monkeypatch.setattr(
        operator.hook.client, "get", lambda name, namespace=None: InferenceEndpoint.from_raw(raw, "demo")
    )
    with pytest.raises(
        EndpointsError, match="plain http URL on another machine .*the token is not sent there"
    ):
        operator.execute({"ti": TaskInstanceStub()})
    assert sent == []
    assert inference_requests(cloud) == []


def test_overload_is_backpressure_not_an_inputs_failure_while_the_batch_progresses(cloud):
    cloud.seed_endpoint("gen")
    # the first 40 requests are refused as overloaded: far more than one input's max_retries=2
    cloud.set_faults([{"scope": "inference", "kind": "429", "count": 40}])
    jobs = [f"busy {i}" for i in range(30)]
    results, xcom = run(task="text-generation", inputs=jobs, max_retries=2, max_concurrency=4)
    assert results == [expected_text(job) for job in jobs]  # none ended by the 429s
    assert xcom["summary"]["failed"] == 0
    assert xcom["summary"]["throttled"] == 40
    per_input = Counter(r["json"]["inputs"] for r in inference_requests(cloud))
    assert max(per_input.values()) > 3, per_input  # some input waited through more 429s than its retries


def test_an_endpoint_refusing_everything_as_overloaded_ends_the_batch_after_overload_timeout(cloud):
    cloud.seed_endpoint("gen")
    cloud.set_faults([{"scope": "inference", "kind": "429", "rate": 1.0}])
    with pytest.raises(EndpointsError, match=r"3 of 3 inputs failed .*HTTP 429"):
        run(task="text-generation", inputs=["a", "b", "c"], max_retries=2, overload_timeout=0.5)
    # no input succeeded for overload_timeout: from then on each 429 counted as a retry
    assert len(inference_requests(cloud)) >= 9


TEI_EMBEDDER = {
    "repository": "BAAI/bge-small-en-v1.5",
    "framework": "pytorch",
    "task": "feature-extraction",
    "image": {"tei": {"url": "ghcr.io/huggingface/text-embeddings-inference:1.8"}},
}


@pytest.mark.parametrize("task", ["feature-extraction", "embeddings"])
def test_embeddings_are_batched_each_result_once_in_order(cloud, task):
    cloud.seed_endpoint("gen", model=TEI_EMBEDDER)
    texts = [f"document {i}" for i in range(100)]
    results, xcom = run(task=task, inputs=texts, batch_size=32)
    assert results == [runners.embed(t) for t in texts]
    sizes = sorted(len(r["json"].get("inputs", r["json"].get("input"))) for r in inference_requests(cloud))
    assert sizes == [4, 32, 32, 32]  # 100 inputs in 4 requests
    assert xcom["summary"]["requests"] == 4
    assert xcom["summary"]["succeeded"] == 100


@pytest.mark.parametrize("states_its_limits", [True, False], ids=["stated", "probed"])
def test_a_batch_too_large_for_the_endpoint_is_split_and_later_batches_fit(states_its_limits):
    """TEI's /info states max_client_batch_size: requests fit it from the first; unstated, a 413 finds it."""
    with Emulator(max_client_batch_size=8, deploy_seconds=0.5) as cloud:
        os.environ["AIRFLOW_CONN_HF_INFERENCE_ENDPOINTS_DEFAULT"] = cloud.airflow_connection()
        try:
            cloud.seed_endpoint("gen", model=TEI_EMBEDDER)
            if not states_its_limits:
                cloud.set_faults([{"scope": "server", "kind": "503"}])
            texts = [f"document {i}" for i in range(200)]
            results, xcom = run(task="feature-extraction", inputs=texts, batch_size=32, max_concurrency=1)
        finally:
            os.environ.pop("AIRFLOW_CONN_HF_INFERENCE_ENDPOINTS_DEFAULT")
        assert results == [runners.embed(t) for t in texts]  # each exactly once, in order
        sent = inference_requests(cloud)
        refused = [r for r in sent if r["status"] == 413]
        # halved until it fit, once; or never too large
        assert [len(r["json"]["inputs"]) for r in refused] == ([] if states_its_limits else [32, 16])
        accepted = [len(r["json"]["inputs"]) for r in sent if r["status"] == 200]
        assert max(accepted) == 8
        assert sum(accepted) == 200
        assert xcom["summary"]["failed"] == 0


def test_batched_results_resume_per_input_from_output_path(cloud, tmp_path):
    cloud.seed_endpoint("gen", model=TEI_EMBEDDER)
    jobs_file = tmp_path / "jobs.jsonl"
    jobs_file.write_text("".join(json.dumps(f"text {i}") + "\n" for i in range(90)))
    out = tmp_path / "results.jsonl"
    arguments = {
        "task": "embeddings",
        "input_path": str(jobs_file),
        "output_path": str(out),
        "batch_size": 16,
    }
    cloud.set_faults([{"scope": "inference", "kind": "500", "count": 2}])  # two groups fail (not retried)
    run(on_item_error="record", **arguments)
    kept = {r["index"] for r in map(json.loads, out.read_text().splitlines()) if "output" in r}
    assert len(kept) == 90 - 32
    cloud.clear_faults()
    cloud.clear_requests()
    second, _ = run(**arguments)
    sent = [text for r in inference_requests(cloud) for text in r["json"]["input"]]
    assert sorted(sent) == sorted(f"text {i}" for i in range(90) if i not in kept)  # only the missing, once
    assert second["summary"]["reused"] == 90 - 32
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["index"] for r in records) == list(range(90))
    assert all(r["output"] == runners.embed(f"text {r['index']}") for r in records)


def test_execution_timeout_stops_the_batch_commits_what_was_answered_and_fails(cloud, tmp_path, run_dag):
    """The alarm is Airflow's own (dag.test() runs the task with its timeout); each of three timeouts
    must end its batch early, with every answer received kept, and the task failed."""
    from tests.dags.hfep_inference_cases import TIMEOUTS

    cloud.seed_endpoint("gen")
    total = 5000  # 2 at a time: well over 10 s of work for at most 3 s of time
    for seconds in TIMEOUTS:
        jobs = "".join(json.dumps(f"job {seconds}s {i}") + "\n" for i in range(total))
        (tmp_path / f"jobs-{seconds}s.jsonl").write_text(jobs)
    run_ = run_dag("hfep_inference_timeout", conf={"dir": str(tmp_path)})
    assert run_.state == "failed"
    assert run_.tasks == {f"infer_{seconds}s": "failed" for seconds in TIMEOUTS}
    assert run_.output.count("AirflowTaskTimeout") >= len(TIMEOUTS)
    for seconds in TIMEOUTS:
        # (a request cancelled before its body was read is logged without one)
        sent = [r for r in inference_requests(cloud) if r["json"]]
        mine = [r for r in sent if r["json"]["inputs"].startswith(f"job {seconds}s ")]
        answered = {r["json"]["inputs"] for r in mine if r["status"] == 200}
        assert len(mine) < total  # stopped, not run to the end
        assert not (tmp_path / f"results-{seconds}s.jsonl").exists()  # failed: nothing joined
        pieces = sorted((tmp_path / f"results-{seconds}s.jsonl.parts").glob("part-*.jsonl"))
        committed = [json.loads(line) for piece in pieces for line in piece.read_text().splitlines()]
        kept = {f"job {seconds}s {r['index']}" for r in committed}
        assert len(kept) == len(committed)  # each once
        assert kept <= answered
        # the open piece was committed by the stop: lost are only the answers on their way (2 in flight)
        assert len(answered - kept) <= 2, (seconds, len(answered), len(kept))


def test_results_are_announced_as_asset_events(cloud, tmp_path, run_dag):
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    cloud.seed_endpoint("gen")
    run_ = run_dag("hfep_inference_asset", conf={"dir": str(tmp_path)})
    assert run_.state == "success"
    with create_session() as session:
        events = {
            uri: extra
            for uri, extra in session.query(AssetModel.uri, AssetEvent.extra)
            .join(AssetEvent, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetEvent.source_run_id == run_.run_id)
        }
    output = f"file://{tmp_path}/results.jsonl"
    assert events[output]["output_path"] == f"{tmp_path}/results.jsonl"
    assert events[output]["uri"] == output
    assert events[output]["results"] == 3
    assert events["hfep-test-results-folder"]["uri"] == output
