"""gob.ReuseMap: an unchanged map entry keeps its object from the last stream, a changed
one is decoded, and nothing is reused when the streams' type ids differ."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.gopeer import GoEngine, write_checks_file

from seesaw_healthcheck import schema
from seesaw_healthcheck.gob import Decoder, Encoder, ReuseMap
from seesaw_healthcheck.model import (
    Checks,
    Config,
    Context,
    DNSChecker,
    DNSQuestion,
    Target,
    TCPChecker,
    UDPChecker,
    ip_to_bytes,
)
from seesaw_healthcheck.reactor import Reactor
from seesaw_healthcheck.rpc import reactor_call


def fetch(path: Path, reuse: ReuseMap) -> Checks:
    with Reactor() as reactor:
        reply: Checks = reactor.run(
            reactor_call.call(
                str(path), schema.HEALTHCHECKS, Context.trusted(), schema.CONTEXT_ARG,
                schema.CHECKS, reuse=reuse,
            )
        )  # fmt: skip
    return reply


def configs(n: int, port: int = 80) -> list[dict[str, object]]:
    kinds = ["tcp", "udp", "dns"]
    out: list[dict[str, object]] = []
    for i in range(1, n + 1):
        kind = kinds[i % 3]
        extra = (
            {"query": "a.example.", "query_type": 1, "answer": "192.0.2.1"} if kind == "dns" else {}
        )
        out.append({"id": i, "interval": "1s", "timeout": "1s", "type": kind, "ip": "127.0.0.1",
                    "port": port + i, **extra})  # fmt: skip
    return out


def test_unchanged_configs_keep_their_objects_across_fetches_from_go(
    gopeer: Path, short_tmp: Path
) -> None:
    checks_file = short_tmp / "checks.json"
    write_checks_file(checks_file, configs(300))
    sock = short_tmp / "engine.sock"
    reuse = ReuseMap()
    with GoEngine(sock, checks_file=checks_file):
        first = fetch(sock, reuse).configs
        assert first is not None and reuse.reused == 0
        # Go's map order is random; the first value of each checker type carries its type
        # definition and gets the next type id, so streams with the same configs may or
        # may not define the same ids. Whenever they do, every entry but those carrying a
        # definition (here or last time: at most 6) is taken over; the values are always
        # right.
        taken_over = []
        last = first
        for _ in range(6):
            again = fetch(sock, reuse).configs
            assert again == first
            taken_over.append(reuse.reused)
            if reuse.reused:
                assert reuse.reused >= 294
                assert len([i for i in first if again[i] is last[i]]) == reuse.reused
            last = again
        changed = configs(300)
        changed[9]["port"] = 9999
        write_checks_file(checks_file, changed)
        for _ in range(10):  # until a stream defines the same ids again
            third = fetch(sock, reuse).configs
            assert third is not None
            assert third[10].checker.target.port == 9999  # type: ignore[union-attr]
            if reuse.reused:
                assert reuse.reused >= 293 and third[10] is not last[10]
                break
            last = third
        else:
            raise AssertionError(f"no stream with the same type ids in 10 fetches: {taken_over}")


def stream(values: list[Config], first: type) -> bytes:
    """A stream of one Config (its checker of type ``first``: that type gets the first
    checker type id), then a Checks of ``values``."""
    encoder = Encoder()
    sample = next(c for c in values if isinstance(c.checker, first))
    out = encoder.encode(sample, schema.CONFIG)
    return out + encoder.encode(Checks(configs={c.id: c for c in values}), schema.CHECKS)


def decode_last(data: bytes, reuse: ReuseMap | None) -> Checks:
    decoder = Decoder(reuse=reuse)
    decoder.feed(data)
    decoder.next()  # the lone Config, generically
    value = decoder.next(schema.CHECKS)
    assert isinstance(value, Checks)
    return value


def test_nothing_is_reused_when_the_type_ids_differ() -> None:
    target = Target(ip=ip_to_bytes("127.0.0.1"), port=53, proto=17)
    values = [
        Config(1, 10**9, 0, 0, TCPChecker(target)),
        Config(2, 10**9, 0, 0, UDPChecker(target, "a", "b")),
        Config(3, 10**9, 0, 0, DNSChecker(target, DNSQuestion("a.", 1, 1), "1.2.3.4")),
    ]
    reuse = ReuseMap()
    one = decode_last(stream(values, TCPChecker), reuse)
    assert reuse.reused == 0
    same = decode_last(stream(values, TCPChecker), reuse)
    # The TCP config's type came with the lone Config: every entry is taken over but the
    # two that carried their checker's type definition.
    assert reuse.reused == 1 and same.configs[1] is one.configs[1]  # type: ignore[index]
    assert same == one
    permuted = decode_last(stream(values, DNSChecker), reuse)
    assert reuse.reused == 0  # other ids: every entry decoded again
    assert permuted == one and permuted.configs[1] is not one.configs[1]  # type: ignore[index]


ports = st.integers(min_value=0, max_value=65535)
checkers = st.one_of(
    st.builds(lambda p: TCPChecker(Target(ip=ip_to_bytes("127.0.0.1"), port=p)), ports),
    st.builds(
        lambda p, s: UDPChecker(Target(ip=ip_to_bytes("::1"), port=p), s, s), ports, st.text()
    ),
    st.builds(
        lambda p: DNSChecker(Target(ip=ip_to_bytes("::1"), port=p), DNSQuestion("a.", 1, 1)), ports
    ),
)
sets = st.dictionaries(
    st.integers(min_value=1, max_value=2**64 - 1),
    st.builds(lambda i, c: Config(0, i, 0, 0, c), st.integers(1, 10**12), checkers),
    max_size=20,
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(sets, st.sampled_from([TCPChecker, UDPChecker, DNSChecker])),
        min_size=1,
        max_size=5,
    )
)
def test_decoding_with_reuse_gives_what_decoding_without_gives(
    rounds: list[tuple[dict[int, Config], type]],
) -> None:
    reuse = ReuseMap()
    for configs, first in rounds:
        for check_id, config in configs.items():
            config.id = check_id
        values = list(configs.values())
        if not any(isinstance(c.checker, first) for c in values):
            first = type(values[0].checker) if values else TCPChecker
        if not values:
            continue
        data = stream(values, first)
        assert decode_last(data, reuse) == decode_last(data, None)
