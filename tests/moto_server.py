"""A real S3 API for the tests: moto's standalone server on 127.0.0.1, in its own process group.

Airflow reaches it through an ``aws`` connection whose ``endpoint_url`` points at it, so the Amazon
provider's object storage (s3fs) is the code under test, as on a user's stack."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

MOTO_SERVER = Path(sys.executable).with_name("moto_server")
#: moto accepts any key pair; these are what the connection carries
ACCESS_KEY, SECRET_KEY, REGION = "testing", "testing", "us-east-1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MotoS3:
    """One moto server with one bucket.

    :param log_dir: where its log goes.
    :param bucket: the bucket created at start.
    """

    def __init__(self, log_dir: Path, bucket: str = "nightly") -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.bucket = bucket
        self.log_path = log_dir / "moto.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> MotoS3:
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto_server exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/moto-api/", timeout=2).status_code < 500:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"moto_server not up after {timeout} s") from None
                time.sleep(0.1)
        self.client().create_bucket(Bucket=self.bucket)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)

    def __enter__(self) -> MotoS3:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def client(self) -> Any:
        """A boto3 S3 client on the server: the tests' own view of the bucket."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )

    def airflow_connection(self) -> str:
        """The ``AIRFLOW_CONN_<ID>`` value of an ``aws`` connection to this server."""
        return json.dumps(
            {
                "conn_type": "aws",
                "login": ACCESS_KEY,
                "password": SECRET_KEY,
                "extra": {"endpoint_url": self.url, "region_name": REGION},
            }
        )

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def read(self, key: str) -> bytes:
        return self.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def open_uploads(self) -> list[dict[str, Any]]:
        """Multipart uploads begun and neither completed nor aborted (S3 bills them until removed)."""
        return self.client().list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])

    def reset(self) -> None:
        """Empty the bucket."""
        client = self.client()
        for upload in self.open_uploads():
            client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
        for key in self.keys():
            client.delete_object(Bucket=self.bucket, Key=key)
