"""A local S3 for object-storage tests: moto's server mode on a free loopback port, one bucket,
and an Airflow ``aws`` connection to it (``AIRFLOW_CONN_<ID>`` JSON, ``endpoint_url`` in extra,
dummy keys), so ``ObjectStoragePath("s3://<conn_id>@<bucket>/...")`` goes through the amazon
provider's s3fs file system to it.

Use it as a module fixture: ``with moto_s3() as s3: ...``; ``s3.client`` is a boto3 client that
sees the bucket as it is (no s3fs listing cache in between).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

ACCESS_KEY = "testing-moto-key"
SECRET_KEY = "testing-moto-secret"
REGION = "us-east-1"


@dataclass
class MotoS3:
    endpoint_url: str
    bucket: str
    conn_id: str
    client: Any

    def url(self, key: str) -> str:
        """The output URI of ``key`` in the bucket, through the Airflow connection."""
        return f"s3://{self.conn_id}@{self.bucket}/{key}"

    def keys(self, prefix: str = "") -> list[str]:
        """Every object key under ``prefix``, sorted."""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        )
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def read(self, key: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def put(self, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body)

    def multipart_uploads(self) -> list[str]:
        """The keys of multipart uploads started and neither completed nor aborted."""
        uploads = self.client.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])
        return sorted(u["Key"] for u in uploads)


def aws_conn_json(endpoint_url: str) -> str:
    return json.dumps(
        {
            "conn_type": "aws",
            "login": ACCESS_KEY,
            "password": SECRET_KEY,
            "extra": {"endpoint_url": endpoint_url, "region_name": REGION},
        }
    )


@contextmanager
def moto_s3(bucket: str = "landing", conn_id: str = "aws_moto") -> Iterator[MotoS3]:
    """A moto S3 server with ``bucket``, and the connection ``conn_id`` to it, while inside."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()  # the port it bound: no race with other processes
    endpoint_url = f"http://127.0.0.1:{port}"
    env = {
        f"AIRFLOW_CONN_{conn_id.upper()}": aws_conn_json(endpoint_url),
        # Never a developer's real AWS profile or credentials.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )
        client.create_bucket(Bucket=bucket)
        yield MotoS3(endpoint_url, bucket, conn_id, client)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        server.stop()
