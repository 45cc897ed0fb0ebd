"""grpcapi.convert: API Check <-> model.Config, model.Status <-> API Status, the filters.

Round trips go through the wire bytes (SerializeToString / FromString), so a field the
converter forgot, or put in the wrong place, shows up as a difference.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from google.protobuf import duration_pb2, timestamp_pb2
from hypothesis import given, settings
from hypothesis import strategies as st
from tests import gopeer

from seesaw_healthcheck import model
from seesaw_healthcheck.gob.gotime import GoTime
from seesaw_healthcheck.grpcapi import convert
from seesaw_healthcheck.grpcapi import healthcheck_pb2 as pb
from seesaw_healthcheck.model import config_problem

SECOND = model.SECOND


def wire(check: pb.Check) -> pb.Check:
    return pb.Check.FromString(check.SerializeToString())


def valid_check(**changes: Any) -> pb.Check:
    """A valid TCP check; keyword arguments replace its fields."""
    check = pb.Check(
        id=7,
        interval=duration_pb2.Duration(seconds=5),
        timeout=duration_pb2.Duration(nanos=500_000_000),
        retries=1,
        target=pb.Target(ip="192.0.2.1", port=80, proto=pb.PROTOCOL_TCP),
        tcp=pb.TCPChecker(send=b"ping", receive=b"pong"),
    )
    for name, value in changes.items():
        if value is None:
            check.ClearField(name)  # type: ignore[arg-type]
        elif isinstance(value, duration_pb2.Duration | pb.Target):
            getattr(check, name).CopyFrom(value)
        else:
            setattr(check, name, value)
    return check


def reject_reason(check: pb.Check) -> str:
    """The one reason checks_from_proto gives for ``check``, which must be rejected."""
    configs, errors = convert.checks_from_proto([wire(check)])
    assert configs == {}
    assert len(errors) == 1
    assert errors[0].id == check.id and errors[0].index == 0
    return errors[0].reason


# --- Every checker type, both ways ---------------------------------------------------------


def variants() -> list[model.Config]:
    """The gopeer recipe (all six types, IPv4) plus DSR, TUN, IPv6 and odd bytes."""
    configs = [gopeer.recipe_config(i) for i in range(1, 13)]
    dsr = gopeer.recipe_config(1)
    assert dsr.checker is not None
    dsr.checker.target.mode = model.Mode.DSR
    dsr.checker.target.host = model.ip_to_bytes("10.0.0.9")
    dsr.checker.target.mark = 0xFFFFFFFF
    dsr.id = 101
    tun = model.Config(
        id=102,
        interval=SECOND,
        checker=model.HTTPChecker(
            model.Target(
                ip=model.ip_to_bytes("2001:db8::80"),
                host=model.ip_to_bytes("2001:db8::1"),
                mode=model.Mode.TUN,
                mark=7,
                port=443,
                proto=model.Proto.TCP,
            ),
            secure=True,
            tls_verify=True,
            method="HEAD",
            proxy=True,
            request="http://example.com/ü",
            response="ökay",
            response_code=204,
        ),
    )
    ping6 = model.Config(
        id=103,
        interval=3 * SECOND,
        timeout=SECOND,
        checker=model.PingChecker(
            model.Target(ip=model.ip_to_bytes("::1"), proto=model.Proto.ICMPV6),
            id=0xFFFF,
            seqnum=0xFFFF,
        ),
    )
    # Go strings that are not UTF-8 ride in the bytes fields (send/receive) unchanged.
    binary = model.Config(
        id=104,
        interval=SECOND,
        retries=2**31 - 1,
        checker=model.UDPChecker(
            model.Target(ip=model.ip_to_bytes("127.0.0.1"), port=53, proto=model.Proto.UDP),
            send=b"\x00\xff\xfe binary".decode("utf-8", "surrogateescape"),
            receive=b"\x80".decode("utf-8", "surrogateescape"),
        ),
    )
    return [*configs, dsr, tun, ping6, binary]


@pytest.mark.parametrize("config", variants(), ids=lambda c: f"{type(c.checker).__name__}-{c.id}")
def test_model_to_api_and_back(config: model.Config) -> None:
    check = wire(convert.check_to_proto(config))
    assert check.WhichOneof("checker") is not None
    back = convert.check_from_proto(check)
    assert back == config
    assert config_problem(back) is None


def test_every_checker_type_is_covered() -> None:
    kinds = {check.WhichOneof("checker") for check in map(convert.check_to_proto, variants())}
    assert kinds == set(convert.CHECKER_FIELDS)
    assert set(convert.CHECKER_FIELDS.values()) == set(model.CHECKER_TYPES)
    assert set(convert.CHECKER_FIELDS) == {
        f.name for f in pb.Check.DESCRIPTOR.oneofs_by_name["checker"].fields
    }


def api_checks() -> list[pb.Check]:
    """One API check per checker type, every field set to something not zero."""
    dsr: dict[str, Any] = {
        "ip": "10.1.2.3",
        "host": "10.9.9.9",
        "port": 8443,
        "mode": pb.MODE_DSR,
        "mark": 42,
    }
    common: dict[str, Any] = {
        "interval": duration_pb2.Duration(seconds=2, nanos=5),
        "timeout": duration_pb2.Duration(seconds=1),
        "retries": 3,
    }
    return [
        pb.Check(
            id=1,
            target=pb.Target(ip="10.1.2.3", port=25, proto=pb.PROTOCOL_TCP),
            tcp=pb.TCPChecker(send=b"EHLO\r\n", receive=b"220", secure=True, tls_verify=True),
            **common,
        ),
        pb.Check(
            id=2,
            target=pb.Target(proto=pb.PROTOCOL_TCP, **dsr),
            http=pb.HTTPChecker(
                method="POST",
                request="/health?x=1",
                response="ok",
                response_code=200,
                secure=True,
                tls_verify=True,
                proxy=True,
            ),
            **common,
        ),
        pb.Check(
            id=3,
            target=pb.Target(ip="2001:db8::53", port=53, proto=pb.PROTOCOL_UDP),
            dns=pb.DNSChecker(query_name="www.example.com.", query_type=28, query_class=3),
            **common,
        ),
        pb.Check(
            id=4,
            target=pb.Target(
                ip="10.1.2.3",
                port=514,
                proto=pb.PROTOCOL_UDP,
                mode=pb.MODE_TUN,
                host="10.9.9.8",
                mark=1,
            ),
            udp=pb.UDPChecker(send=b"\x00\x01", receive=b"\xff"),
            **common,
        ),
        pb.Check(
            id=5,
            target=pb.Target(ip="10.1.2.3", proto=pb.PROTOCOL_ICMP),
            ping=pb.PingChecker(id=4321, seqnum=17),
            **common,
        ),
        pb.Check(
            id=2**64 - 1,
            target=pb.Target(ip="10.1.2.3", port=1812, proto=pb.PROTOCOL_UDP),
            radius=pb.RADIUSChecker(username="u", password="p", secret="s", response="challenge"),
            **common,
        ),
    ]


@pytest.mark.parametrize("check", api_checks(), ids=lambda c: c.WhichOneof("checker"))
def test_api_to_model_and_back(check: pb.Check) -> None:
    config = convert.check_from_proto(wire(check))
    assert config_problem(config) is None
    assert wire(convert.check_to_proto(config)) == check


def test_api_fields_land_in_the_model() -> None:
    """Spot checks that each field went where its name says, not just somewhere."""
    tcp, http, dns, udp, ping, radius = (convert.check_from_proto(c) for c in api_checks())
    assert tcp.interval == 2 * SECOND + 5 and tcp.timeout == SECOND and tcp.retries == 3
    assert isinstance(tcp.checker, model.TCPChecker)
    assert (tcp.checker.send, tcp.checker.receive) == ("EHLO\r\n", "220")
    assert isinstance(http.checker, model.HTTPChecker)
    t = http.checker.target
    assert (str(t.address), model.ip_from_bytes(t.host), t.port, t.mark, t.mode) == (
        "10.1.2.3",
        model.ip_from_bytes(model.ip_to_bytes("10.9.9.9")),
        8443,
        42,
        model.Mode.DSR,
    )
    assert (http.checker.method, http.checker.request, http.checker.response_code) == (
        "POST",
        "/health?x=1",
        200,
    )
    assert isinstance(dns.checker, model.DNSChecker)
    assert dns.checker.question == model.DNSQuestion("www.example.com.", 28, 3)
    assert isinstance(udp.checker, model.UDPChecker)
    assert udp.checker.send.encode("utf-8", "surrogateescape") == b"\x00\x01"
    assert udp.checker.receive.encode("utf-8", "surrogateescape") == b"\xff"
    assert isinstance(ping.checker, model.PingChecker)
    assert (ping.checker.id, ping.checker.seqnum) == (4321, 17)
    assert isinstance(radius.checker, model.RADIUSChecker)
    assert radius.id == 2**64 - 1
    assert (radius.checker.username, radius.checker.secret, radius.checker.response) == (
        "u",
        "s",
        "challenge",
    )


@pytest.mark.parametrize(
    ("field", "ip", "proto"),
    [
        ("tcp", "10.0.0.1", model.Proto.TCP),
        ("http", "10.0.0.1", model.Proto.TCP),
        ("dns", "10.0.0.1", model.Proto.UDP),
        ("udp", "10.0.0.1", model.Proto.UDP),
        ("radius", "10.0.0.1", model.Proto.UDP),
        ("ping", "10.0.0.1", model.Proto.ICMP),
        ("ping", "2001:db8::1", model.Proto.ICMPV6),
    ],
)
def test_unspecified_proto_is_the_checkers_own(field: str, ip: str, proto: int) -> None:
    check = pb.Check(id=1, interval=duration_pb2.Duration(seconds=1), target=pb.Target(ip=ip))
    getattr(check, field).SetInParent()
    config = convert.check_from_proto(wire(check))
    assert config.checker is not None
    assert config.checker.target.proto == proto
    # An explicit protocol is kept, whatever the checker.
    check.target.proto = pb.PROTOCOL_UDP if proto == model.Proto.TCP else pb.PROTOCOL_TCP
    config = convert.check_from_proto(wire(check))
    assert config.checker is not None
    assert config.checker.target.proto == check.target.proto


def test_dns_class_zero_means_in() -> None:
    check = valid_check(tcp=None)
    check.dns.CopyFrom(pb.DNSChecker(query_name="a.example.", query_type=1, answer="192.0.2.1"))
    config = convert.check_from_proto(check)
    assert isinstance(config.checker, model.DNSChecker)
    assert config.checker.question.qclass == 1


@settings(max_examples=200, deadline=None)
@given(
    check_id=st.integers(1, 2**64 - 1),
    interval_ns=st.integers(1, 7 * 24 * 3600 * SECOND),
    timeout_ns=st.integers(0, 24 * 3600 * SECOND),
    retries=st.integers(0, 2**31 - 1),
    port=st.integers(0, 65535),
    mark=st.integers(0, 2**32 - 1),
    v6=st.booleans(),
    payload=st.binary(max_size=40),
    text=st.text(max_size=40),
    kind=st.sampled_from(sorted(convert.CHECKER_FIELDS)),
)
def test_round_trip_property(
    check_id: int,
    interval_ns: int,
    timeout_ns: int,
    retries: int,
    port: int,
    mark: int,
    v6: bool,
    payload: bytes,
    text: str,
    kind: str,
) -> None:
    ip = model.ip_to_bytes("2001:db8::7" if v6 else "198.51.100.7")
    target = model.Target(ip=ip, port=port, mark=mark, proto=model.Proto.UDP)
    go_text = payload.decode("utf-8", "surrogateescape")
    checker: model.Checker = {
        "tcp": lambda: model.TCPChecker(target, receive=go_text, send=go_text, secure=True),
        "http": lambda: model.HTTPChecker(target, method=text, request=text, response=text),
        "dns": lambda: model.DNSChecker(target, model.DNSQuestion(text, port, port), text),
        "udp": lambda: model.UDPChecker(target, receive=go_text, send=go_text),
        "ping": lambda: model.PingChecker(target, id=port, seqnum=port),
        "radius": lambda: model.RADIUSChecker(target, text, text, text, text),
    }[kind]()
    if isinstance(checker, model.DNSChecker) and checker.question.qclass == 0:
        checker.question.qclass = 1  # 0 reads back as IN
    if isinstance(checker, model.HTTPChecker) and not checker.method:
        checker.method = "GET"  # an empty method reads back as GET, as Seesaw's engine has it
    config = model.Config(check_id, interval_ns, timeout_ns, retries, checker)
    assert convert.check_from_proto(wire(convert.check_to_proto(config))) == config


# --- Every invalid case, with its reason --------------------------------------------------


def with_target(**fields: Any) -> pb.Check:
    base = {"ip": "192.0.2.1", "port": 80, "proto": pb.PROTOCOL_TCP}
    base.update(fields)
    return valid_check(target=pb.Target(**base))


INVALID: list[tuple[str, pb.Check, str]] = [
    ("no checker", valid_check(tcp=None), "no checker: set one of tcp, http, dns, udp, ping"),
    ("no target", valid_check(target=None), "target is not set"),
    ("empty ip", with_target(ip=""), "target.ip is empty"),
    ("bad ip", with_target(ip="300.1.1.1"), "target.ip '300.1.1.1' is not an IP address"),
    ("leading zero", with_target(ip="010.1.1.1"), "target.ip '010.1.1.1' is not an IP address"),
    ("name, not ip", with_target(ip="example.com"), "target.ip 'example.com' is not an IP"),
    ("zone", with_target(ip="fe80::1%eth0"), "target.ip 'fe80::1%eth0': an IPv6 zone is not"),
    ("bad host", with_target(host="10.0.0.x", mode=pb.MODE_DSR), "target.host '10.0.0.x' is"),
    ("dsr no host", with_target(mode=pb.MODE_DSR), "target host (needed in DSR mode)"),
    ("tun no host", with_target(mode=pb.MODE_TUN), "target host (needed in TUN mode)"),
    ("unknown mode", with_target(mode=7), "target mode 7 is unknown"),
    ("port", with_target(port=70000), "target port 70000 is out of range [0, 65535]"),
    ("proto", with_target(proto=300), "target.proto 300 is out of range [0, 255]"),
    ("no interval", valid_check(interval=None), "interval 0s is out of range (0s, 168h0m0s]"),
    (
        "negative interval",
        valid_check(interval=duration_pb2.Duration(seconds=-1)),
        "interval -1s is out of range",
    ),
    (
        "long interval",
        valid_check(interval=duration_pb2.Duration(seconds=7 * 24 * 3600 + 1)),
        "interval 168h0m1s is out of range",
    ),
    (
        "interval nanos",
        valid_check(interval=duration_pb2.Duration(seconds=1, nanos=1_000_000_000)),
        "interval: nanos 1000000000 is out of range [-999999999, 999999999]",
    ),
    (
        "interval signs",
        valid_check(interval=duration_pb2.Duration(seconds=1, nanos=-1)),
        "interval: seconds 1 and nanos -1 differ in sign",
    ),
    (
        "negative timeout",
        valid_check(timeout=duration_pb2.Duration(nanos=-5)),
        "timeout -5ns is out of range [0s, 24h0m0s]",
    ),
    (
        "long timeout",
        valid_check(timeout=duration_pb2.Duration(seconds=25 * 3600)),
        "timeout 25h0m0s is out of range",
    ),
    ("negative retries", valid_check(retries=-1), "retries -1 is out of range [0, 2147483647]"),
]


def _set(check: pb.Check, field: str, message: Any) -> pb.Check:
    getattr(check, field).CopyFrom(message)
    return check


INVALID += [
    (
        "dns type",
        _set(valid_check(tcp=None), "dns", pb.DNSChecker(query_name="x.", query_type=65536)),
        "dns.query_type 65536 is out of range [0, 65535]",
    ),
    (
        "dns class",
        _set(valid_check(tcp=None), "dns", pb.DNSChecker(query_type=1, query_class=70000)),
        "dns.query_class 70000 is out of range [0, 65535]",
    ),
    (
        "ping id",
        _set(valid_check(tcp=None), "ping", pb.PingChecker(id=65536)),
        "ping.id 65536 is out of range [0, 65535]",
    ),
    (
        "ping seqnum",
        _set(valid_check(tcp=None), "ping", pb.PingChecker(seqnum=2**32 - 1)),
        "ping.seqnum 4294967295 is out of range [0, 65535]",
    ),
]


@pytest.mark.parametrize(("check", "reason"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_check_is_rejected_with_its_reason(check: pb.Check, reason: str) -> None:
    assert reason in reject_reason(check)


def test_semantic_reasons_are_config_problems() -> None:
    """Past the conversion, the reason is config_problem's own: one definition of valid."""
    check = with_target(port=70000)
    config = convert.check_from_proto(check)
    assert reject_reason(check) == config_problem(config)


def test_checker_of_a_newer_proto_is_named() -> None:
    """A checker field this server's .proto does not have arrives as an unknown field."""
    raw = valid_check(tcp=None).SerializeToString() + b"\x8a\x01\x00"  # field 17, empty
    reason = reject_reason(pb.Check.FromString(raw))
    assert "field 17 is a checker type this server does not know" in reason
    assert "tcp, http, dns, udp, ping, radius" in reason


def test_id_zero_and_duplicates_are_rejected_and_the_rest_run() -> None:
    checks = [valid_check(id=i) for i in (1, 0, 2, 3, 2, 4)]
    checks[5].target.port = 99999
    configs, errors = convert.checks_from_proto(checks)
    assert sorted(configs) == [1, 3]
    assert [(e.index, e.id) for e in errors] == [(1, 0), (2, 2), (4, 2), (5, 4)]
    assert "id 0 is not allowed" in errors[0].reason
    assert (
        errors[1].reason
        == errors[2].reason
        == ("id 2 is not unique: 2 checks in the request have it")
    )
    assert "port 99999" in errors[3].reason


def test_empty_request_is_an_empty_set() -> None:
    assert convert.checks_from_proto([]) == ({}, [])


def test_many_checks_each_judged_alone() -> None:
    """1,000 checks, every 10th broken: exactly those are rejected, the rest convert."""
    checks = [convert.check_to_proto(gopeer.recipe_config(i)) for i in range(1, 1001)]
    for check in checks[9::10]:
        check.interval.Clear()
    configs, errors = convert.checks_from_proto([wire(c) for c in checks])
    assert [e.id for e in errors] == list(range(10, 1001, 10))
    assert all(e.reason.startswith("interval 0s is out of range") for e in errors)
    assert configs == {i: gopeer.recipe_config(i) for i in range(1, 1001) if i % 10}


def test_check_to_proto_refuses_what_the_api_cannot_hold() -> None:
    with pytest.raises(ValueError, match="has no checker"):
        convert.check_to_proto(model.Config(id=1))
    bad = gopeer.recipe_config(2)  # http: its strings are proto3 strings, UTF-8 only
    assert isinstance(bad.checker, model.HTTPChecker)
    bad.checker.request = b"/\xff".decode("utf-8", "surrogateescape")
    with pytest.raises(ValueError, match="not UTF-8"):
        convert.check_to_proto(bad)


# --- Status ----------------------------------------------------------------------------------


def test_status_round_trip() -> None:
    status = model.Status(
        last_check=GoTime.from_unix_ns(1_700_000_000_123_456_789, 3600),
        duration=1_234_567,
        failures=2**64 - 1,
        successes=5,
        state=model.State.HEALTHY,
        message="TCP connect to 192.0.2.1:80",
    )
    msg = pb.Status.FromString(convert.status_to_proto(99, status).SerializeToString())
    assert msg.id == 99 and msg.state == pb.STATE_HEALTHY
    assert msg.last_check == timestamp_pb2.Timestamp(seconds=1_700_000_000, nanos=123_456_789)
    assert msg.duration == duration_pb2.Duration(nanos=1_234_567)
    check_id, back = convert.status_from_proto(msg)
    assert check_id == 99
    # The API's Timestamp has no zone: the same instant comes back in UTC.
    assert back == dataclasses.replace(
        status, last_check=GoTime.from_unix_ns(status.last_check.unix_ns)
    )


def test_status_before_first_run_has_no_last_check() -> None:
    msg = convert.status_to_proto(1, model.Status())
    assert not msg.HasField("last_check")
    assert msg.state == pb.STATE_UNKNOWN and msg.message == ""
    assert convert.status_from_proto(msg) == (1, model.Status())


@pytest.mark.parametrize("state", list(model.State))
def test_state_numbers_are_seesaws(state: model.State) -> None:
    assert pb.State.Name(convert.status_to_proto(1, model.Status(state=state)).state) == (
        f"STATE_{state.name}"
    )


def test_status_message_not_utf8_is_replaced() -> None:
    go_bytes = b"unexpected response - \xff\xfe".decode("utf-8", "surrogateescape")
    msg = convert.status_to_proto(1, model.Status(message=go_bytes))
    assert msg.message == "unexpected response - \ufffd\ufffd"
    assert pb.Status.FromString(msg.SerializeToString()).message == msg.message


def test_status_times_before_1970() -> None:
    t = GoTime.from_unix_ns(-1_500_000_000)  # 1969-12-31T23:59:58.5Z
    msg = convert.status_to_proto(1, model.Status(last_check=t))
    assert (msg.last_check.seconds, msg.last_check.nanos) == (-2, 500_000_000)
    assert convert.status_from_proto(msg)[1].last_check == t


# --- ListStatus filters ------------------------------------------------------------------


def _config(ip: str, checker_cls: type, host: str = "") -> model.Config:
    target = model.Target(
        ip=model.ip_to_bytes(ip, four=True), host=model.ip_to_bytes(host) if host else b""
    )
    return model.Config(id=1, interval=SECOND, checker=checker_cls(target))


def test_filter_empty_passes_everything() -> None:
    f = convert.StatusFilter.from_proto(pb.ListStatusRequest())
    assert f.matches(5, None, model.State.UNKNOWN)
    assert f.matches(6, _config("10.0.0.1", model.TCPChecker), model.State.HEALTHY)


def test_filter_each_dimension() -> None:
    f = convert.StatusFilter.from_proto(
        pb.ListStatusRequest(
            states=[pb.STATE_UNHEALTHY, pb.STATE_UNKNOWN],
            types=[pb.CHECKER_TYPE_DNS, pb.CHECKER_TYPE_PING],
            ips=["::ffff:10.0.0.1", "2001:db8::5"],
            ids=[1, 2],
        )
    )
    dns = _config("10.0.0.1", model.DNSChecker)  # 4-byte ip: still the same address
    assert f.matches(1, dns, model.State.UNHEALTHY)
    assert not f.matches(3, dns, model.State.UNHEALTHY)  # id
    assert not f.matches(1, dns, model.State.HEALTHY)  # state
    assert not f.matches(1, _config("10.0.0.1", model.TCPChecker), model.State.UNKNOWN)  # type
    assert not f.matches(1, _config("10.0.0.2", model.DNSChecker), model.State.UNKNOWN)  # ip
    # In DSR/TUN mode the host is an address of the check too.
    assert f.matches(2, _config("10.9.9.9", model.PingChecker, "2001:db8::5"), 0)
    assert not f.matches(2, None, model.State.UNKNOWN)  # no checker: no type, no address


def test_filter_bad_ip_is_an_error() -> None:
    with pytest.raises(ValueError, match="ips: 'nope' is not an IP address"):
        convert.StatusFilter.from_proto(pb.ListStatusRequest(ips=["10.0.0.1", "nope"]))


def test_checker_type_of_each_model_type() -> None:
    assert {convert.checker_type(cls(model.Target())) for cls in model.CHECKER_TYPES} == set(
        pb.CheckerType.values()
    ) - {pb.CHECKER_TYPE_UNSPECIFIED}
    assert convert.checker_type(None) == pb.CHECKER_TYPE_UNSPECIFIED


def test_a_check_sent_again_unchanged_keeps_its_config_object() -> None:
    """With a ConfigReuse, the next SetChecks takes over the Config of every check whose
    bytes did not change; a changed, an invalid or a dropped check is not kept."""
    reuse = convert.ConfigReuse()
    checks = [convert.check_to_proto(gopeer.recipe_config(i)) for i in range(1, 101)]
    first, errors = convert.checks_from_proto([wire(c) for c in checks], reuse)
    assert not errors and sorted(reuse.entries) == list(range(1, 101))
    checks[4].retries += 1  # id 5 changed
    checks[9].interval.Clear()  # id 10 now invalid
    del checks[-1]  # id 100 dropped
    second, errors = convert.checks_from_proto([wire(c) for c in checks], reuse)
    assert [e.id for e in errors] == [10]
    assert second[5] is not first[5] and second[5].retries == first[5].retries + 1
    assert all(second[i] is first[i] for i in second if i != 5)
    assert sorted(second) == sorted(set(range(1, 100)) - {10})
    assert sorted(reuse.entries) == sorted(second)
    # what is kept is what a fresh conversion gives
    assert second == convert.checks_from_proto([wire(c) for c in checks])[0]
