"""Fuzz target: the DNS checker's reply parser (``checkers/dns.py`` ``evaluate_reply``,
with ``read_name`` and dnspython's rdata decoding under it).

Input: one DNS message as received. It is judged as the reply to each question of
``QUESTIONS`` (with the answer the check expects), with the query id the message carries
(so the header check passes and the rest is reached), over UDP and over TCP. The only
exception allowed is ``Ignored`` (a datagram that is not our reply: the check keeps
waiting); a ``Verdict`` must be consistent (truncated only over UDP; a success names the
answer it matched).
"""

from __future__ import annotations

import struct

from harness import fuzz, instrumented

with instrumented(__name__, "dns"):  # dnspython decodes the record data
    from seesaw_healthcheck.checkers.dns import Ignored, Verdict, evaluate_reply, parse_answer
    from seesaw_healthcheck.model import DNSQuestion

# (name, qtype, answer): class IN; the names as the check sends them (fully qualified).
QUESTIONS = (
    ("example.com.", 1, "192.0.2.1"),
    ("example.com.", 28, "2001:db8::1"),
    ("Example.COM.", 28, "192.0.2.1"),  # an IPv4 answer to AAAA: its v4-mapped form
    ("example.com.", 16, "v=spf1 -all"),
    ("example.com.", 15, "10 mail.example.com"),
    ("www.example.com.", 5, "example.com"),
    ("example.com.", 2, "ns1.example.com"),
    ("example.com.", 6, "ns1.example.com. hostmaster.example.com. 1 7200 3600 1209600 300"),
    ("_http._tcp.example.com.", 33, "0 5 80 www.example.com"),
    ("1.2.0.192.in-addr.arpa.", 12, "host.example.com"),
)
CASES = [
    (DNSQuestion(name, qtype, 1), parse_answer(qtype, 1, answer))
    for name, qtype, answer in QUESTIONS
]


def TestOneInput(data: bytes) -> None:  # atheris calls it by this name
    query_id = struct.unpack_from("!H", data)[0] if len(data) >= 2 else 0
    for question, expected in CASES:
        for over_tcp in (False, True):
            try:
                verdict = evaluate_reply(data, query_id, question, expected, over_tcp=over_tcp)
            except Ignored:
                continue
            assert isinstance(verdict, Verdict), verdict
            assert not (verdict.truncated and over_tcp), verdict
            if verdict.success:
                assert verdict.suffix.startswith("; received answer "), verdict
                assert not verdict.truncated, verdict


if __name__ == "__main__":
    fuzz(TestOneInput)
