"""DNS checker against a real dnspython responder on loopback (UDP and TCP)."""

from __future__ import annotations

import time

import dns.flags
import dns.message
import pytest
from tests.conftest import run_check
from tests.responders.dns import DNSResponder

from seesaw_healthcheck.checkers import dns as dns_check
from seesaw_healthcheck.model import DNSChecker, DNSQuestion, Proto, Target, ip_to_bytes

HOSTS = ["127.0.0.1", "::1"]
A, NS, CNAME, SOA, PTR, MX, TXT, AAAA, SRV = 1, 2, 5, 6, 12, 15, 16, 28, 33
IN, CH = 1, 3

ZONE = {
    ("www.example.com.", "A"): ["192.0.2.10", "192.0.2.11"],
    ("www.example.com.", "AAAA"): ["2001:db8::10"],
    ("www.example.com.", "TXT"): ['"v=spf1 -all"', '"two" "strings"'],
    ("alias.example.com.", "CNAME"): ["www.example.com."],
    ("example.com.", "NS"): ["ns1.example.com.", "ns2.example.com."],
    ("example.com.", "MX"): ["10 mx1.example.com.", "20 mx2.example.com."],
    ("example.com.", "SOA"): ["ns1.example.com. hostmaster.example.com. 2024 7200 900 1209600 300"],
    ("10.2.0.192.in-addr.arpa.", "PTR"): ["www.example.com."],
    ("_sip._udp.example.com.", "SRV"): ["10 60 5060 sip.example.com."],
}

# (name, qtype, answer, success): our comparison rules, one row per rule and type.
DNS_TESTS = [
    ("www.example.com", A, "192.0.2.10", True),
    ("www.example.com.", A, "192.0.2.11", True),
    ("WWW.Example.COM", A, "192.0.2.10", True),  # names compare without case
    ("www.example.com", A, "::ffff:192.0.2.10", True),  # Go's ParseIP: the IPv4 address
    ("www.example.com", A, "192.0.2.12", False),
    ("www.example.com", AAAA, "2001:db8::10", True),
    ("www.example.com", AAAA, "2001:0db8:0:0::0010", True),  # by address, not by text
    ("www.example.com", AAAA, "2001:db8::11", False),
    ("alias.example.com", CNAME, "www.example.com.", True),
    ("alias.example.com", CNAME, "WWW.example.com", True),  # made fully qualified
    ("alias.example.com", CNAME, "mail.example.com", False),
    ("alias.example.com", A, "192.0.2.10", False),  # CNAME chains are not followed
    ("example.com", NS, "ns2.example.com", True),
    ("example.com", NS, "ns3.example.com", False),
    ("example.com", MX, "20 mx2.example.com", True),
    ("example.com", MX, "10 mx2.example.com", False),
    (
        "example.com",
        SOA,
        "ns1.example.com. hostmaster.example.com. 2024 7200 900 1209600 300",
        True,
    ),
    (
        "example.com",
        SOA,
        "ns1.example.com. hostmaster.example.com. 2025 7200 900 1209600 300",
        False,
    ),
    ("www.example.com", TXT, "v=spf1 -all", True),
    ("www.example.com", TXT, "twostrings", True),  # strings joined
    ("www.example.com", TXT, '"two" "strings"', True),  # or the presentation form
    ("www.example.com", TXT, "v=spf1 +all", False),
    ("10.2.0.192.in-addr.arpa", PTR, "www.example.com", True),
    ("_sip._udp.example.com", SRV, "10 60 5060 sip.example.com", True),
    ("_sip._udp.example.com", SRV, "10 60 5061 sip.example.com", False),
]


def dns_checker(
    host: str, port: int, name: str, qtype: int = A, answer: str = "", qclass: int = IN
) -> DNSChecker:
    return DNSChecker(
        target=Target(ip=ip_to_bytes(host), port=port, proto=Proto.UDP),
        question=DNSQuestion(name=name, qtype=qtype, qclass=qclass),
        answer=answer,
    )


@pytest.mark.parametrize("host", HOSTS)
def test_answer_table(host: str) -> None:
    with DNSResponder(host, ZONE) as peer:
        for name, qtype, answer, expected in DNS_TESTS:
            result = run_check(dns_checker(host, peer.port, name, qtype, answer))
            assert result.success is expected, (name, qtype, answer, result.message)
            if expected:
                assert "; received answer " in result.message
            else:
                assert result.message.endswith("; failed to match answer"), result.message
        assert peer.tcp_queries == 0


def test_success_message_follows_seesaw() -> None:
    with DNSResponder("127.0.0.1", ZONE) as peer:
        result = run_check(dns_checker("127.0.0.1", peer.port, "www.example.com", A, "192.0.2.11"))
    assert result.success and result.error is None
    assert result.message == (
        f"DNS www.example.com. IN A query to port {peer.port}; received answer 192.0.2.11"
    )


@pytest.mark.parametrize("host", HOSTS)
def test_truncated_reply_is_retried_over_tcp(host: str) -> None:
    with DNSResponder(host, ZONE, truncate_udp=True) as peer:
        ok = run_check(dns_checker(host, peer.port, "example.com", MX, "10 mx1.example.com"))
        bad = run_check(dns_checker(host, peer.port, "example.com", MX, "30 mx1.example.com"))
    assert ok.success, ok.message
    assert "; reply truncated, retried over TCP; received answer 10 mx1.example.com." in ok.message
    assert not bad.success
    assert bad.message.endswith("; reply truncated, retried over TCP; failed to match answer")
    assert (peer.udp_queries, peer.tcp_queries) == (2, 2)


def test_truncated_reply_and_silent_tcp_times_out() -> None:
    with DNSResponder("127.0.0.1", ZONE, truncate_udp=True) as peer:
        peer.silent_tcp = True
        started = time.monotonic()
        result = run_check(
            dns_checker("127.0.0.1", peer.port, "www.example.com", A, "192.0.2.10"), 0.3
        )
        elapsed = time.monotonic() - started
    assert not result.success
    assert elapsed < 1.0
    assert "retried over TCP; failed to read response" in result.message
    assert "i/o timeout" in str(result.error)


@pytest.mark.parametrize("host", HOSTS)
def test_silent_server_times_out_in_time(host: str) -> None:
    with DNSResponder(host, ZONE, silent=True) as peer:
        started = time.monotonic()
        result = run_check(dns_checker(host, peer.port, "www.example.com", A, "192.0.2.10"), 0.3)
        elapsed = time.monotonic() - started
    assert not result.success
    assert 0.25 <= elapsed < 1.0
    assert result.message.endswith("; failed to read response")
    assert str(result.error).endswith(": i/o timeout")


def test_stray_replies_are_ignored() -> None:
    """A reply with another id, then one for another question, then the real one."""
    with DNSResponder("::1", ZONE, stray_first=True) as peer:
        result = run_check(dns_checker("::1", peer.port, "www.example.com", AAAA, "2001:db8::10"))
    assert result.success, result.message


def test_only_stray_replies_time_out_and_say_why() -> None:
    with DNSResponder("127.0.0.1", ZONE, stray_first=True) as peer:
        peer.drop_real_reply = True
        result = run_check(
            dns_checker("127.0.0.1", peer.port, "www.example.com", A, "192.0.2.10"), 0.3
        )
    assert not result.success
    assert "i/o timeout (ignored 2: reply is for another question: stray.invalid. IN A)" in str(
        result.error
    )


def test_error_replies_follow_seesaw_wording() -> None:
    with DNSResponder("127.0.0.1", ZONE) as peer:
        port = peer.port
        nx = run_check(dns_checker("127.0.0.1", port, "nope.example.com", A, "192.0.2.1"))
        empty = run_check(dns_checker("127.0.0.1", port, "example.com", AAAA, "::1"))
        bad_a = run_check(dns_checker("127.0.0.1", port, "www.example.com", A, "2001:db8::1"))
        bad_aaaa = run_check(dns_checker("127.0.0.1", port, "www.example.com", AAAA, "x"))
        bad_mx = run_check(dns_checker("127.0.0.1", port, "example.com", MX, "mx1.example.com"))
        sent = peer.udp_queries
    prefix = f"DNS nope.example.com. IN A query to port {port}"
    assert nx.message == prefix + "; non-zero response code - 3"
    assert empty.message.endswith("; no answers received for query example.com. IN AAAA")
    assert bad_a.message.endswith('; "2001:db8::1" is not a valid IPv4 address')
    assert bad_aaaa.message.endswith('; "x" is not a valid IPv6 address')
    assert '; "mx1.example.com" is not a valid MX answer' in bad_mx.message
    assert not (nx.success or empty.success or bad_a.success or bad_aaaa.success or bad_mx.success)
    assert sent == 2  # a bad Answer fails before any packet is sent


def test_forced_rcode_and_not_a_response() -> None:
    with DNSResponder("127.0.0.1", ZONE, rcode=2) as peer:
        servfail = run_check(
            dns_checker("127.0.0.1", peer.port, "www.example.com", A, "192.0.2.10")
        )
    with DNSResponder("127.0.0.1", ZONE, not_response=True) as peer:
        not_response = run_check(
            dns_checker("127.0.0.1", peer.port, "www.example.com", A, "192.0.2.10")
        )
    assert servfail.message.endswith("; non-zero response code - 2")
    assert not_response.message.endswith("; not a query response")


def test_closed_port_fails() -> None:
    with DNSResponder("127.0.0.1", ZONE) as peer:
        port = peer.port
    result = run_check(dns_checker("127.0.0.1", port, "www.example.com", A, "192.0.2.10"))
    assert not result.success
    assert "connection refused" in str(result.error)


def test_query_bytes() -> None:
    """RD set, no EDNS, one question; the id patched into a cached wire form."""
    wire = dns_check.build_query("example.com.", A, IN, 5)
    assert wire.hex() == "000501000001000000000000076578616d706c6503636f6d0000010001"
    again = dns_check.build_query("example.com.", A, IN, 0xBEEF)
    assert again[:2] == b"\xbe\xef" and again[2:] == wire[2:]
    query = dns.message.from_wire(wire)
    assert query.flags == dns.flags.RD and query.edns < 0


def test_describe_and_names() -> None:
    checker = dns_checker("::1", 53, "www.example.com", AAAA)
    assert dns_check.describe(checker) == "DNS www.example.com IN AAAA [::1]:53 PLAIN"
    assert dns_check.question_text("x.", 0, 2) == "x. CS None"
    assert dns_check.question_text("x.", 65280, 3) == "x. CH TYPE65280"


def test_reply_evaluation_sans_io() -> None:
    question = DNSQuestion("www.example.com.", A, IN)
    expected = dns_check.parse_answer(A, IN, "192.0.2.1")
    query = dns.message.make_query("www.example.com.", "A")
    reply = dns.message.make_response(query)
    reply.answer.append(dns.rrset.from_text("www.example.com.", 60, "IN", "A", "192.0.2.1"))
    verdict = dns_check.evaluate_reply(
        reply.to_wire(), query.id, question, expected, over_tcp=False
    )
    assert verdict.success and verdict.suffix == "; received answer 192.0.2.1"
    with pytest.raises(dns_check.Ignored, match="reply id"):
        dns_check.evaluate_reply(reply.to_wire(), query.id ^ 1, question, expected, over_tcp=False)
    with pytest.raises(dns_check.Ignored, match="shorter than a DNS header"):
        dns_check.evaluate_reply(b"\x00" * 5, 0, question, expected, over_tcp=False)
    reply.flags |= dns.flags.TC
    assert dns_check.evaluate_reply(
        reply.to_wire(), query.id, question, expected, over_tcp=False
    ).truncated


def test_reply_names_are_compared_however_they_are_written() -> None:
    """The usual reply (our question echoed byte for byte, owner names as a pointer to it)
    takes a fast path; a question in other letter case, or owner names written out, or
    pointing elsewhere, are read label by label; the verdicts agree."""
    question = DNSQuestion("www.example.com.", A, IN)
    expected = dns_check.parse_answer(A, IN, "192.0.2.1")
    header = b"\x12\x34\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00"
    name = b"\x03www\x07example\x03com\x00"
    shouted = b"\x03WWW\x07EXAMPLE\x03COM\x00"
    qtail = b"\x00\x01\x00\x01"
    rr_tail = b"\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00\x02\x01"
    other = b"\x03www\x07example\x03net\x00"
    replies = {
        "echo + pointer": (header + name + qtail + b"\xc0\x0c" + rr_tail, True),
        "echo + written out": (header + name + qtail + name + rr_tail, True),
        "other case + pointer": (header + shouted + qtail + b"\xc0\x0c" + rr_tail, True),
        "other case + written": (header + shouted + qtail + shouted + rr_tail, True),
        "owner is another name": (header + name + qtail + other + rr_tail, False),
        "pointer to the middle": (header + name + qtail + b"\xc0\x10" + rr_tail, False),
    }
    for label, (wire, success) in replies.items():
        verdict = dns_check.evaluate_reply(wire, 0x1234, question, expected, over_tcp=False)
        assert verdict.success is success, label
    with pytest.raises(dns_check.Ignored, match="another question"):
        other_question = header + other + qtail + b"\xc0\x0c" + rr_tail
        dns_check.evaluate_reply(other_question, 0x1234, question, expected, over_tcp=False)


def test_read_name_follows_compression_and_refuses_loops() -> None:
    wire = b"\x00" * 12 + b"\x03WWW\x07example\x03com\x00" + b"\x04mail\xc0\x10" + b"\xc0\x22"
    assert dns_check.read_name(wire, 12) == (b"\x03www\x07example\x03com\x00", 29)
    assert dns_check.read_name(wire, 29) == (b"\x04mail\x07example\x03com\x00", 36)
    with pytest.raises(dns_check.Ignored, match="loop"):
        dns_check.read_name(wire + b"\xc0\x26", 38)
    with pytest.raises(dns_check.Ignored, match="bad label type"):
        dns_check.read_name(b"\x40abc", 0)
    with pytest.raises(dns_check.Ignored, match="past the end"):
        dns_check.read_name(b"\x05ab", 0)


def test_malformed_replies_are_ignored() -> None:
    question = DNSQuestion("www.example.com.", A, IN)
    expected = dns_check.parse_answer(A, IN, "192.0.2.1")
    query = dns.message.make_query("www.example.com.", "A")
    reply = dns.message.make_response(query)
    reply.answer.append(dns.rrset.from_text("www.example.com.", 60, "IN", "A", "192.0.2.1"))
    wire = reply.to_wire()
    for broken in (wire[:-2], wire[:30], wire[:12] + b"\xff" * 20):
        with pytest.raises(dns_check.Ignored, match=r"undecodable|another question"):
            dns_check.evaluate_reply(broken, query.id, question, expected, over_tcp=False)


def test_mapped_aaaa_answer_prints_as_go_does() -> None:
    zone = {("m.example.com.", "AAAA"): ["::ffff:192.0.2.7"]}
    with DNSResponder("127.0.0.1", zone) as peer:
        result = run_check(dns_checker("127.0.0.1", peer.port, "m.example.com", AAAA, "192.0.2.7"))
    assert result.success
    assert result.message.endswith("; received answer 192.0.2.7")
