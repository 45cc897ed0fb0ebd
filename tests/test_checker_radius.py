"""RADIUS checker: Seesaw's own packet tables byte for byte, and a pyrad peer on loopback."""

from __future__ import annotations

import socket
import time
from typing import Any

import pyrad.packet
import pytest
from tests.conftest import run_check
from tests.responders.radius import RADIUSResponder

from seesaw_healthcheck.checkers import radius
from seesaw_healthcheck.model import Proto, RADIUSChecker, Target, ip_to_bytes

HOSTS = ["127.0.0.1", "::1"]
AUTH1 = bytes(range(16))
AUTH2 = b"\xff" * 16

# Seesaw's radius_test.go radiusPasswordTests: (password, secret, authenticator, hidden).
SEESAW_PASSWORD_TESTS = [
    ("", "", AUTH1, ""),
    ("a", "secret", AUTH1, "370ec9449092d367ca5efb706cd4e707"),
    ("0123456789abcdef", "mySuperRADIUSSecret", AUTH1, "ca9db664ec31d8ac40e88590405d92d6"),
    ("0123456789abcdef", "mySuperRADIUSSecret!", AUTH1, "7d8f1f9f31b9b4e93056e7637ca4824d"),
    (
        "0123456789abcdef!",
        "mySuperRADIUSSecret!",
        AUTH1,
        "7d8f1f9f31b9b4e93056e7637ca4824d5f0bd0565b1a1f64c578b269488a7d47",
    ),
    (
        "0123456789abcdef!",
        "mySuperRADIUSSecret!",
        AUTH2,
        "d8bd08459a3a9d5cc43ef049732fe4fda6d1b868077ce3749b82d2317cf57138",
    ),
    (
        "a" * 256,
        "mySuperRADIUSSecret!",
        AUTH1,
        "2cdf4ccd64ede3bf690ee7607ea1864abf82c2d8150263111c00730df1b3b693"
        "8354cf942bfc8a9dca57d85b7c8bdb2a01650d748054d74a0a9560c54d762a5e"
        "370b87c260899046046661 8e7ec6554f9473b9e2fe9ff662609df5f337c0fa74"
        "5c0a215d944d302a03e3b969d91fe3f809204ec30ab989ef7c498cf52438932a".replace(" ", ""),
    ),
]

# radiusResponseAuthenticatorTests: Access-Reject packets and their request authenticator.
REJECT_BODY = "121f72616469757331 2d342e7477642e636f72702e676f6f676c652e636f6d".replace(" ", "")
SEESAW_RESPONSE_AUTH_TESTS = [
    ("0376003389f1d6e2bbfd5337166490e23820cd26" + REJECT_BODY, "mySuperRADIUSSecret!", AUTH1),
    ("03760033d42cbecdb1871f0d476162ae35bdd39e" + REJECT_BODY, "mySuperRADIUSSecret!", AUTH2),
]

# radiusPacketTests[0]: an Access-Request as Seesaw's prober sent it.
SEESAW_REQUEST = bytes.fromhex(
    "01130065075a3daae367b4b03bdb03cfb1110ca7200e7261646975737072"
    "6f626572010f7261646975732d70726f62657202228571b24f7e8154595a"
    "1258b07193b736c9dd652f6f0787e9ce348bc4eff619fd0406ac17000805"
    "060000002a060600000001"
)


@pytest.mark.parametrize(("password", "secret", "authenticator", "hidden"), SEESAW_PASSWORD_TESTS)
def test_seesaw_password_table(
    password: str, secret: str, authenticator: bytes, hidden: str
) -> None:
    got = radius.hide_password(password.encode(), secret.encode(), authenticator)
    assert got.hex() == hidden


@pytest.mark.parametrize(("packet", "secret", "request_auth"), SEESAW_RESPONSE_AUTH_TESTS)
def test_seesaw_response_authenticator_table(packet: str, secret: str, request_auth: bytes) -> None:
    decoded = radius.decode_packet(bytes.fromhex(packet))
    assert decoded.code == radius.ACCESS_REJECT and decoded.identifier == 0x76
    assert radius.response_authenticator(decoded, request_auth, secret.encode()) == (
        decoded.authenticator
    )
    success, suffix, error = radius.evaluate_reply(
        bytes.fromhex(packet), 0x76, request_auth, secret.encode(), "reject"
    )
    assert (success, suffix, error) == (True, "; got RADIUS Access-Reject response", None)


def test_seesaw_packet_table() -> None:
    decoded = radius.decode_packet(SEESAW_REQUEST)
    assert (decoded.code, decoded.identifier, decoded.length) == (1, 0x13, 0x65)
    assert decoded.authenticator.hex() == "075a3daae367b4b03bdb03cfb1110ca7"
    assert [(t, v.hex()) for t, v in decoded.attributes] == [
        (0x20, b"radiusprober".hex()),
        (0x01, b"radius-prober".hex()),
        (0x02, "8571b24f7e8154595a1258b07193b736c9dd652f6f0787e9ce348bc4eff619fd"),
        (0x04, "ac170008"),
        (0x05, "0000002a"),
        (0x06, "00000001"),
    ]


def test_request_bytes() -> None:
    """Seesaw's attributes in Seesaw's order, byte for byte."""
    packet = radius.build_access_request(
        0x13,
        AUTH1,
        username=b"alice",
        password=b"a",
        secret=b"secret",
        nas_identifier=b"lb1",
        nas_ip=bytes([127, 0, 0, 1]),
    )
    assert packet.hex() == (
        "01130044"
        + AUTH1.hex()
        + "20056c6231"  # NAS-Identifier "lb1"
        + "0107616c696365"  # User-Name "alice"
        + "0212370ec9449092d367ca5efb706cd4e707"  # User-Password, Seesaw's hiding
        + "04067f000001"  # NAS-IP-Address 127.0.0.1
        + "3d0600000005"  # NAS-Port-Type virtual
        + "060600000001"  # Service-Type login
    )


@pytest.mark.parametrize(
    "data",
    [b"\x02\x01\x00", b"\x02\x01\x00\x13" + b"\x00" * 16, b"\x02\x01\x00\x20" + b"\x00" * 16],
)
def test_bad_packets_are_decode_errors(data: bytes) -> None:
    with pytest.raises(radius.RadiusDecodeError):
        radius.decode_packet(data)
    with pytest.raises(radius.RadiusDecodeError, match="overruns"):
        radius.decode_packet(b"\x02\x01\x00\x17" + b"\x00" * 16 + b"\x01\x09\x00")


def radius_checker(host: str, port: int, **kwargs: Any) -> RADIUSChecker:
    return RADIUSChecker(target=Target(ip=ip_to_bytes(host), port=port, proto=Proto.UDP), **kwargs)


USERS = {"alice": ("wonderland", "accept"), "bob": ("builder", "challenge")}

# (username, password, Response, success, reply the peer sends)
RESPONSE_TESTS = [
    ("alice", "wonderland", "accept", True, "Access-Accept"),
    ("alice", "wonderland", "", True, "Access-Accept"),  # empty: Seesaw's default, accept
    ("alice", "wonderland", "any", True, "Access-Accept"),
    ("alice", "wonderland", "reject", False, "Access-Accept"),
    ("alice", "wrong", "reject", True, "Access-Reject"),
    ("alice", "wrong", "accept", False, "Access-Reject"),
    ("nobody", "x" * 40, "any", True, "Access-Reject"),
    ("bob", "builder", "challenge", True, "Access-Challenge"),
    ("bob", "builder", "accept", False, "Access-Challenge"),
]


@pytest.mark.parametrize("host", HOSTS)
def test_responses_against_pyrad(host: str) -> None:
    with RADIUSResponder(host, secret=b"s3cret", users=USERS) as peer:
        for username, password, response, expected, got in RESPONSE_TESTS:
            checker = radius_checker(
                host,
                peer.port,
                username=username,
                password=password,
                secret="s3cret",
                response=response,
            )
            result = run_check(checker)
            assert result.success is expected, (username, response, result.message)
            assert f"; got RADIUS {got} response" in result.message
            if not expected:
                assert result.message.endswith(f"; want {response or 'accept'} response")
        # pyrad un-hid every password with the shared secret.
        assert peer.passwords == [password for _, password, *_ in RESPONSE_TESTS]
        request = peer.requests[0]
    assert request["User-Name"] == ["alice"]
    assert request["NAS-Identifier"] == [socket.gethostname()]
    assert request["Service-Type"] == [1] and request["NAS-Port-Type"] == [5]
    assert request.get("NAS-IP-Address") == (["127.0.0.1"] if host == "127.0.0.1" else None)


@pytest.mark.parametrize("host", HOSTS)
def test_wrong_secret_is_an_authenticator_mismatch(host: str) -> None:
    with RADIUSResponder(host, secret=b"theirs", users=USERS) as peer:
        checker = radius_checker(
            host,
            peer.port,
            username="alice",
            password="wonderland",
            secret="ours",
            response="any",
        )
        result = run_check(checker)
    assert not result.success
    assert result.message == (
        f"RADIUS Access-Request to port {peer.port}; "
        "response authenticator mismatch (incorrect secret?)"
    )


def test_unknown_reply_code() -> None:
    with RADIUSResponder(
        "127.0.0.1", secret=b"s", reply_code=pyrad.packet.AccountingResponse
    ) as peer:
        result = run_check(radius_checker("127.0.0.1", peer.port, secret="s", response="accept"))
    assert not result.success
    assert result.message.endswith(
        "; got RADIUS Accounting-Response response; unknown RADIUS response 5"
    )


@pytest.mark.parametrize("host", HOSTS)
def test_silent_server_times_out(host: str) -> None:
    with RADIUSResponder(host, silent=True) as peer:
        started = time.monotonic()
        result = run_check(radius_checker(host, peer.port, secret="s", response="any"), 0.3)
        elapsed = time.monotonic() - started
    assert not result.success
    assert 0.25 <= elapsed < 1.0
    assert result.message.endswith("; failed to read response")
    assert str(result.error).endswith(": i/o timeout")


def test_describe() -> None:
    assert radius.describe(radius_checker("::1", 1812)) == "RADIUS [::1]:1812 PLAIN"
