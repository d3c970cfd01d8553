"""Delivery method choice from /5/0/9 and /5/0/8, and Package URI construction."""

from __future__ import annotations

import pytest

from lwm2m_server.ota.method import MethodError, base_coap_uri, choose_method, package_uri

SHA = "ab" * 32
BASE = "coap://192.0.2.1:5683"


def choose(dm: int | None, protocols: list[int], **kw: object) -> tuple[str, str | None]:
    c = choose_method(delivery_method=dm, protocols=protocols, base_uri=kw.pop("base", BASE), sha256_hex=SHA, **kw)  # type: ignore[arg-type]
    return c.method, c.uri


def test_pull_when_both_work() -> None:
    assert choose(2, [0, 1]) == ("pull", f"{BASE}/fw/{SHA}")


def test_config_prefers_push() -> None:
    assert choose(2, [0], prefer="push") == ("push", None)


def test_push_when_device_lists_no_coap_scheme() -> None:
    # coaps only: we would have to write a coap:// URI it did not list
    assert choose(2, [1]) == ("push", None)
    assert choose(2, []) == ("push", None)


def test_pull_only_device_with_wrong_scheme_fails() -> None:
    with pytest.raises(MethodError, match="no protocol"):
        choose(0, [2, 3])


def test_push_only_and_pull_only() -> None:
    assert choose(1, [0]) == ("push", None)
    assert choose(0, [0]) == ("pull", f"{BASE}/fw/{SHA}")


def test_coaps_base_needs_coaps_listed() -> None:
    assert choose(2, [0], base="coaps://h:5684") == ("push", None)
    assert choose(2, [1], base="coaps://h:5684") == ("pull", f"coaps://h:5684/fw/{SHA}")


def test_operator_request_is_honoured_or_refused() -> None:
    assert choose(2, [0], requested="push") == ("push", None)
    assert choose(2, [0], prefer="push", requested="pull")[0] == "pull"
    with pytest.raises(MethodError, match="push"):
        choose(0, [0], requested="push")
    with pytest.raises(MethodError, match="scheme"):
        choose(2, [1], requested="pull")


def test_absent_delivery_method_means_both() -> None:
    assert choose(None, [0]) == ("pull", f"{BASE}/fw/{SHA}")


def test_package_uri_is_path_only() -> None:
    assert package_uri("coap://h:1/", SHA) == f"coap://h:1/fw/{SHA}"
    assert "?" not in package_uri(BASE, SHA)


def test_base_uri_configured_or_derived() -> None:
    assert base_coap_uri("coap://example.net:5683/", "::", 5683, "10.0.0.1") == "coap://example.net:5683"
    assert base_coap_uri("", "127.0.0.1", 40000, None) == "coap://127.0.0.1:40000"
    assert base_coap_uri("", "::", 40000, "127.0.0.1") == "coap://127.0.0.1:40000"
    assert base_coap_uri("", "::", 40000, "::ffff:127.0.0.1") == "coap://127.0.0.1:40000"
    assert base_coap_uri("", "::1", 5683, None) == "coap://[::1]:5683"
