"""Settings read from CUSTODY_* variables: lists split on commas, bad values named."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from api.settings import Settings


def test_trusted_proxies_default_to_loopback_and_take_addresses_networks_or_a_star(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().forwarded_allow_ips == ["127.0.0.1", "::1"]
    monkeypatch.setenv("CUSTODY_FORWARDED_ALLOW_IPS", " 10.0.0.0/8, 192.0.2.7,fd00::/8 ,*")
    assert Settings().forwarded_allow_ips == ["10.0.0.0/8", "192.0.2.7", "fd00::/8", "*"]


@pytest.mark.parametrize("value", ["proxy.internal", "10.0.0.1/8", "300.1.2.3", "10.0.0.0/33"])
def test_a_trusted_proxy_that_is_no_address_or_network_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("CUSTODY_FORWARDED_ALLOW_IPS", f"127.0.0.1,{value}")
    with pytest.raises(ValidationError, match=f"'{value}' is neither an IP address"):
        Settings()
