"""A fake PAS's MLLP endpoint for the hub's outbound HL7 (SRM^S03 / S04), on the `hl7` package's asyncio streams, in
a thread of its own (so a test, sync or async, and worker subprocesses can all reach it over real TCP).

It de-duplicates by control id (MSH-10) as a real PAS does: a message seen before is answered as the first time and
not applied again. Each arrival is answered by the next step of a script (then AA):
- "AA", "AE", "AR": applied (AA) or refused (AE/AR, not applied), and answered so;
- "drop": the connection closed before the message is applied;
- "drop_after_apply": applied, then the connection closed before the ACK (the case that makes senders resend);
- "silent": applied, and no answer until the sender gives up.
`drop_rate` also drops connections at random (half before, half after applying)."""

from __future__ import annotations

import asyncio
import random
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import hl7
from hl7.mllp import HL7StreamReader, HL7StreamWriter, start_hl7_server


@dataclass
class FakePas:
    script: list[str] = field(default_factory=list)
    drop_rate: float = 0.0
    seed: int = 0
    delay: float = 0.0  # seconds before each answer
    arrivals: list[str] = field(default_factory=list)  # control ids, every copy
    applied: list[str] = field(default_factory=list)  # control ids, once each, in the order applied
    messages: dict[str, hl7.Message] = field(default_factory=dict)  # the first copy of each, parsed
    answers: dict[str, str] = field(default_factory=dict)  # control id -> the ACK code it got
    port: int = 0
    tls: ssl.SSLContext | None = None  # MLLP over TLS with this server context
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def _next(self) -> str:
        with self._lock:
            if self.script:
                return self.script.pop(0)
            if self.drop_rate and self._rng.random() < self.drop_rate:
                return self._rng.choice(["drop", "drop_after_apply"])
            return "AA"

    def _ack(self, message: hl7.Message, code: str) -> bytes:
        control = str(message.segment("MSH")[10])
        text = "refused by the fake PAS" if code != "AA" else ""
        segments = [
            f"MSH|^~\\&|PAS|RFH_PAS|HUB|HUB|20261121100000||ACK^S03^ACK|PAS{control}|P|2.5.1",
            f"MSA|{code}|{control}|{text}",
        ]
        if code != "AA":
            segments.append("ERR||ARQ^1^2|204|E||||no such appointment")
        return ("\r".join(segments) + "\r").encode()

    async def _connection(self, reader: HL7StreamReader, writer: HL7StreamWriter) -> None:
        try:
            while True:
                try:
                    block = await reader.readblock()
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                message = hl7.parse(block.decode("utf-8"))
                control = str(message.segment("MSH")[10])
                step = self._next()
                with self._lock:
                    self.arrivals.append(control)
                    seen = self.answers.get(control)
                if step == "drop":
                    return
                if seen is None and step in ("AA", "drop_after_apply", "silent"):
                    with self._lock:
                        self.applied.append(control)
                        self.messages[control] = message
                        self.answers[control] = seen = "AA"
                elif seen is None:
                    with self._lock:
                        self.messages[control] = message
                        self.answers[control] = seen = step
                if step == "drop_after_apply":
                    return
                if step == "silent":
                    await asyncio.sleep(3600)
                if self.delay:
                    await asyncio.sleep(self.delay)
                writer.writeblock(self._ack(message, seen))
                await writer.drain()
        finally:
            writer.close()

    @contextmanager
    def running(self) -> Iterator[FakePas]:
        started = threading.Event()
        stop: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

        async def serve() -> None:
            stopping = asyncio.Event()
            server = await start_hl7_server(self._connection, "127.0.0.1", 0, ssl=self.tls)
            self.port = server.sockets[0].getsockname()[1]
            stop.append((asyncio.get_running_loop(), stopping))
            started.set()
            await stopping.wait()
            server.close()
            # asyncio.run then cancels the connections still open and closes the loop.

        thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
        thread.start()
        assert started.wait(10), "the fake PAS did not start"
        try:
            yield self
        finally:
            loop, stopping = stop[0]
            loop.call_soon_threadsafe(stopping.set)
            thread.join(10)

    def segments(self, control: str, name: str) -> list[hl7.Segment]:
        return [s for s in self.messages[control] if str(s[0]) == name]

    def field(self, control: str, name: str, place: int) -> str:
        return str(self.segments(control, name)[0][place])
