"""SSL contexts for aiohttp: built off the loop, reused while their files stay the same, built
again when a file changes (a rotated client certificate or CA bundle needs no restart)."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import threading
from pathlib import Path

import pytest

from airflow_provider_oauthcc.auth.aio import transport as async_transport
from devserver.pki import DevPKI, make_dev_pki


@pytest.fixture(scope="module")
def pkis(tmp_path_factory: pytest.TempPathFactory) -> tuple[DevPKI, DevPKI]:
    first = make_dev_pki(tmp_path_factory.mktemp("one"), client_ids=["etl"], ca_name="CA one")
    second = make_dev_pki(tmp_path_factory.mktemp("two"), client_ids=["etl"], ca_name="CA two")
    return first, second


@pytest.fixture(autouse=True)
def _empty() -> None:
    async_transport.clear_ssl_contexts()


def install(source: DevPKI, folder: Path) -> tuple[str, str, str]:
    """Copy a CA bundle and a client certificate into place, replacing what was there."""
    names = ("ca.pem", "client.pem", "client.key")
    sources = (source.ca_cert, source.clients["etl"].cert, source.clients["etl"].key)
    for name, path in zip(names, sources, strict=True):
        shutil.copy(path, folder / f"{name}.new")
        (folder / f"{name}.new").replace(folder / name)
    return str(folder / "ca.pem"), str(folder / "client.pem"), str(folder / "client.key")


def test_a_context_is_reused_while_its_files_stay_the_same(
    pkis: tuple[DevPKI, DevPKI], tmp_path: Path
) -> None:
    ca, cert, key = install(pkis[0], tmp_path)
    first = async_transport.ssl_context(ca, cert, key)
    assert isinstance(first, ssl.SSLContext)
    assert async_transport.ssl_context(ca, cert, key) is first


def test_a_rotated_certificate_or_ca_bundle_gives_a_new_context(
    pkis: tuple[DevPKI, DevPKI], tmp_path: Path
) -> None:
    ca, cert, key = install(pkis[0], tmp_path)
    before = async_transport.ssl_context(ca, cert, key)
    assert isinstance(before, ssl.SSLContext)
    install(pkis[1], tmp_path)
    after = async_transport.ssl_context(ca, cert, key)
    assert isinstance(after, ssl.SSLContext) and after is not before
    trusted = {c["subject"] for c in after.get_ca_certs()} | {
        c["subject"] for c in before.get_ca_certs()
    }
    assert len(trusted) == 2  # each trusts its own CA: the new bundle was read


def test_the_async_variant_reads_files_in_a_worker_thread(
    pkis: tuple[DevPKI, DevPKI], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca, cert, key = install(pkis[0], tmp_path)
    built_in: list[threading.Thread] = []
    real_build = async_transport._build

    def recording_build(*args: object) -> ssl.SSLContext:
        built_in.append(threading.current_thread())
        return real_build(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(async_transport, "_build", recording_build)

    async def twice() -> tuple[object, object, threading.Thread]:
        one = await async_transport.async_ssl_context(ca, cert, key)
        two = await async_transport.async_ssl_context(ca, cert, key)
        return one, two, threading.current_thread()

    one, two, loop_thread = asyncio.run(twice())
    assert one is two and len(built_in) == 1
    assert built_in[0] is not loop_thread


def test_verify_false_without_a_certificate_needs_no_context() -> None:
    assert async_transport.ssl_context(False) is False
    assert asyncio.run(async_transport.async_ssl_context(False)) is False
