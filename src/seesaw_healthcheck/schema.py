"""Seesaw's engine-socket types as gob descriptors: the model (model.py) under Go's names.

Go sends a struct's type name unqualified ("Target") and an unnamed composite type under
its Go spelling ("map[healthcheck.Id]*healthcheck.Config"); both are part of the bytes, so
they are spelled here exactly as Go 1.19 spells them. Named integer types (Id, State,
HealthcheckMode, ...) travel as plain gob ints and uints; ``time.Duration`` as an int64;
``net.IP`` as bytes. Checker interface values travel under the names
``gob.Register(&X{})`` produces.
"""

from __future__ import annotations

from seesaw_healthcheck import model
from seesaw_healthcheck.gob import (
    TIME,
    Bool,
    Bytes,
    Field,
    Int,
    Interface,
    Map,
    Ptr,
    Registry,
    Slice,
    String,
    Struct,
    Uint,
)

HEALTHCHECKS = "SeesawEngine.Healthchecks"
HEALTH_STATE_METHOD = "SeesawEngine.HealthState"

_INT = Int(64)  # Go's int (and every named int type: State, Mode, Port, Mark, ...)
_STRINGS = Slice(String(), name="[]string")

TARGET = Struct(
    "Target",
    [
        Field("IP", Bytes(), "ip"),
        Field("Host", Bytes(), "host"),
        Field("Mark", _INT, "mark"),
        Field("Mode", _INT, "mode"),
        Field("Port", _INT, "port"),
        Field("Proto", Uint(16), "proto"),
    ],
    model.Target,
)

DNS_QUESTION = Struct(
    "Question",
    [
        Field("Name", String(), "name"),
        Field("Qtype", Uint(16), "qtype"),
        Field("Qclass", Uint(16), "qclass"),
    ],
    model.DNSQuestion,
)

DNS_CHECKER = Struct(
    "DNSChecker",
    [
        Field("Target", TARGET, "target"),
        Field("Question", DNS_QUESTION, "question"),
        Field("Answer", String(), "answer"),
    ],
    model.DNSChecker,
)

HTTP_CHECKER = Struct(
    "HTTPChecker",
    [
        Field("Target", TARGET, "target"),
        Field("Secure", Bool(), "secure"),
        Field("TLSVerify", Bool(), "tls_verify"),
        Field("Method", String(), "method"),
        Field("Proxy", Bool(), "proxy"),
        Field("Request", String(), "request"),
        Field("Response", String(), "response"),
        Field("ResponseCode", _INT, "response_code"),
    ],
    model.HTTPChecker,
)

PING_CHECKER = Struct(
    "PingChecker",
    [
        Field("Target", TARGET, "target"),
        Field("ID", Uint(16), "id"),
        Field("Seqnum", Uint(16), "seqnum"),
    ],
    model.PingChecker,
)

RADIUS_CHECKER = Struct(
    "RADIUSChecker",
    [
        Field("Target", TARGET, "target"),
        Field("Username", String(), "username"),
        Field("Password", String(), "password"),
        Field("Secret", String(), "secret"),
        Field("Response", String(), "response"),
    ],
    model.RADIUSChecker,
)

TCP_CHECKER = Struct(
    "TCPChecker",
    [
        Field("Target", TARGET, "target"),
        Field("Receive", String(), "receive"),
        Field("Send", String(), "send"),
        Field("Secure", Bool(), "secure"),
        Field("TLSVerify", Bool(), "tls_verify"),
    ],
    model.TCPChecker,
)

UDP_CHECKER = Struct(
    "UDPChecker",
    [
        Field("Target", TARGET, "target"),
        Field("Receive", String(), "receive"),
        Field("Send", String(), "send"),
    ],
    model.UDPChecker,
)

# Lenient: a checker type this server does not know decodes to gob.UnknownValue, so one
# config the engine added in a newer release costs that check only, not the whole fetch.
CHECKER_REGISTRY = Registry(lenient=True)
CHECKER_REGISTRY.register("*healthcheck.DNSChecker", DNS_CHECKER, model.DNSChecker)
CHECKER_REGISTRY.register("*healthcheck.HTTPChecker", HTTP_CHECKER, model.HTTPChecker)
CHECKER_REGISTRY.register("*healthcheck.PingChecker", PING_CHECKER, model.PingChecker)
CHECKER_REGISTRY.register("*healthcheck.RADIUSChecker", RADIUS_CHECKER, model.RADIUSChecker)
CHECKER_REGISTRY.register("*healthcheck.TCPChecker", TCP_CHECKER, model.TCPChecker)
CHECKER_REGISTRY.register("*healthcheck.UDPChecker", UDP_CHECKER, model.UDPChecker)

# Go names a struct reached through a pointer element of a map or slice with the element's
# Name(), which is empty for a pointer type: Config and Notification travel nameless.
CONFIG = Struct(
    "",
    [
        Field("Id", Uint(64), "id"),
        Field("Interval", Int(64), "interval"),
        Field("Timeout", Int(64), "timeout"),
        Field("Retries", _INT, "retries"),
        Field("Checker", Interface(CHECKER_REGISTRY), "checker"),
    ],
    model.Config,
)

CHECKS = Struct(
    "Checks",
    [
        Field(
            "Configs",
            Map(Uint(64), Ptr(CONFIG), name="map[healthcheck.Id]*healthcheck.Config"),
            "configs",
        ),
    ],
    model.Checks,
)

PEER = Struct(
    "Peer",
    [Field("Component", _INT, "component"), Field("Identity", String(), "identity")],
    model.Peer,
)

USER = Struct(
    "User",
    [
        Field("Groups", _STRINGS, "groups"),
        Field("UID", String(), "uid"),
        Field("Username", String(), "username"),
    ],
    model.User,
)

CONTEXT = Struct(
    "Context",
    [
        Field("AuthToken", String(), "auth_token"),
        Field("AuthType", _INT, "auth_type"),
        Field("Groups", _STRINGS, "groups"),
        Field("Peer", PEER, "peer"),
        Field("Proxy", PEER, "proxy"),
        Field("User", USER, "user"),
    ],
    model.Context,
)

STATUS = Struct(
    "Status",
    [
        Field("LastCheck", TIME, "last_check"),
        Field("Duration", Int(64), "duration"),
        Field("Failures", Uint(64), "failures"),
        Field("Successes", Uint(64), "successes"),
        Field("State", _INT, "state"),
        Field("Message", String(), "message"),
    ],
    model.Status,
)

NOTIFICATION = Struct(
    "",
    [Field("Id", Uint(64), "id"), Field("Status", STATUS, "status")],
    model.Notification,
)

HEALTH_STATE = Struct(
    "HealthState",
    [
        Field("Ctx", Ptr(CONTEXT), "ctx"),
        Field(
            "Notifications",
            Slice(Ptr(NOTIFICATION), name="[]*healthcheck.Notification"),
            "notifications",
        ),
    ],
    model.HealthState,
)

# Method argument and reply types, as the Go signatures declare them.
CONTEXT_ARG = Ptr(CONTEXT)  # Healthchecks(args *ipc.Context, reply *Checks)
HEALTH_STATE_ARG = Ptr(HEALTH_STATE)  # HealthState(args *HealthState, reply *int)
INT_REPLY = _INT
