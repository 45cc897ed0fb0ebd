"""RADIUS responder built on pyrad (an independent implementation of RFC 2865).

    users = {"alice": ("wonderland", "accept"), "bob": ("builder", "challenge")}
    with RADIUSResponder("::1", secret=b"s3cret", users=users) as peer: ...

pyrad decodes each Access-Request and un-hides User-Password with the responder's secret;
a known user with the right password gets the configured reply (accept, reject or
challenge), anyone else Access-Reject. pyrad computes the response authenticator with the
responder's secret, so a checker configured with another secret sees a mismatch.
``silent`` answers nothing; ``requests`` keeps every decoded request for assertions.
"""

from __future__ import annotations

import io

import pyrad.dictionary
import pyrad.packet
from tests.responders.udp import DatagramServer

_DICTIONARY = """
ATTRIBUTE User-Name 1 string
ATTRIBUTE User-Password 2 string encrypt=1
ATTRIBUTE NAS-IP-Address 4 ipaddr
ATTRIBUTE NAS-Port 5 integer
ATTRIBUTE Service-Type 6 integer
ATTRIBUTE Reply-Message 18 string
ATTRIBUTE NAS-Identifier 32 string
ATTRIBUTE NAS-Port-Type 61 integer
"""

CODES = {
    "accept": pyrad.packet.AccessAccept,
    "reject": pyrad.packet.AccessReject,
    "challenge": pyrad.packet.AccessChallenge,
}


def dictionary() -> pyrad.dictionary.Dictionary:
    return pyrad.dictionary.Dictionary(io.StringIO(_DICTIONARY))


class RADIUSResponder(DatagramServer):
    def __init__(
        self,
        host: str = "127.0.0.1",
        *,
        secret: bytes = b"secret",
        users: dict[str, tuple[str, str]] | None = None,
        silent: bool = False,
        reply_code: int | None = None,
    ) -> None:
        super().__init__(host)
        self.secret = secret
        self.users = users or {}
        self.silent = silent
        self.reply_code = reply_code  # forces this code whoever asks
        self.dictionary = dictionary()
        self.requests: list[pyrad.packet.AuthPacket] = []
        self.passwords: list[str] = []

    def handle(self, data: bytes, peer: tuple[str, int]) -> list[bytes]:
        if self.silent:
            return []
        try:
            request = pyrad.packet.AuthPacket(packet=data, secret=self.secret, dict=self.dictionary)
        except pyrad.packet.PacketError:
            return []
        self.requests.append(request)
        username = request["User-Name"][0] if "User-Name" in request else ""
        password = ""
        if "User-Password" in request:
            hidden = request["User-Password"][0]
            try:
                password = request.PwDecrypt(hidden)
            except UnicodeDecodeError:  # the wrong secret un-hides to garbage
                password = "\ufffd"
        self.passwords.append(password)
        code = pyrad.packet.AccessReject
        known = self.users.get(username)
        if known is not None and known[0] == password:
            code = CODES[known[1]]
        if self.reply_code is not None:
            code = self.reply_code
        reply = request.CreateReply()
        reply.code = code
        reply["Reply-Message"] = f"{username}: {code}"
        return [reply.ReplyPacket()]

    def __enter__(self) -> RADIUSResponder:
        super().__enter__()
        return self
