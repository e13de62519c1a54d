"""python -m hub hl7: the MLLP listener, on the `hl7` package's asyncio streams (hl7.mllp).

Every connection is its own task, answering its blocks in the order they came (MLLP's original mode keeps a
sender's messages in order); blocks a peer sends before their ACKs are read ahead and join one group commit. A
slow or silent peer holds only its own task; a malformed frame gets a reject and the connection carries on; an
oversized one gets a reject and the connection is closed (the rest of it cannot be told from the next message); a
dropped connection mid-message applies nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
from typing import Any

from hl7.mllp import HL7StreamReader, HL7StreamWriter, InvalidBlockError, start_hl7_server

from hub.clock import Clock
from hub.db import Database, open_database
from hub.jobs.hl7_receive import REJECT, Receiver
from hub.rules.hl7_mapping import read_trusts
from hub.rules.hl7_message import CHARSETS, Problem, ack, charset_of
from hub.settings import Settings, SettingsError
from hub.store.hl7 import organisation_ids

logger = logging.getLogger(__name__)
AHEAD = 100  # frames read ahead of their ACKs on one connection (a pipelining peer's), as many as one group commit


async def make_receiver(db: Database, settings: Settings, clock: Clock) -> Receiver:
    """The tables checked at start-up: a setting written wrongly, or naming an organisation the hub does not have,
    stops the listener before it answers anything."""
    hl7 = settings.hl7
    try:
        trusts = read_trusts(
            facilities=hl7.facilities,
            mrn_types=hl7.mrn_types,
            nhs_number_types=hl7.nhs_number_types,
            locations=hl7.locations,
            services=hl7.services,
            appointment_types=hl7.appointment_types,
            document_types=hl7.document_types,
        )
    except ValueError as exc:
        raise SettingsError(str(exc)) from exc
    if not trusts:
        raise SettingsError("hl7.facilities is empty: name each sending facility (MSH-4) as FACILITY=ORG")
    wanted = {t.organisation for t in trusts.values()}
    ids = await organisation_ids(db, wanted)
    missing = sorted(wanted - set(ids))
    if missing:
        raise SettingsError(f"hl7.facilities names organisations the hub does not have: {', '.join(missing)}")
    return Receiver(db=db, settings=settings, clock=clock, trusts=trusts, organisation_ids=ids)


def _tls(settings: Settings) -> ssl.SSLContext | None:
    if not settings.hl7.tls_cert_file:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.hl7.tls_cert_file, settings.hl7.tls_key_file or None)
    return context


def _encoded(answer: str, block: bytes | None) -> bytes:
    codec = CHARSETS.get(charset_of(block), "utf-8") if block else "utf-8"
    return answer.encode(codec, errors="replace")


async def _connection(receiver: Receiver, reader: HL7StreamReader, writer: HL7StreamWriter) -> None:
    """Answers in the order the frames came, each once its message is committed. Frames a peer sends without
    waiting for their ACKs (pipelining) are read ahead, up to `AHEAD`, so they join the same group commit."""
    answers: asyncio.Queue[tuple[asyncio.Future[str], bytes | None] | None] = asyncio.Queue()
    room = asyncio.Semaphore(AHEAD)
    reading = asyncio.ensure_future(_read(receiver, reader, answers, room))
    try:
        while (item := await answers.get()) is not None:
            answer, block = item
            writer.writeblock(_encoded(await answer, block))
            await writer.drain()
            room.release()
    except (ConnectionError, OSError):
        return
    finally:
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reading
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def _read(
    receiver: Receiver,
    reader: HL7StreamReader,
    answers: asyncio.Queue[tuple[asyncio.Future[str], bytes | None] | None],
    room: asyncio.Semaphore,
) -> None:
    """Each frame's answer-to-be, queued in order; None once the peer is done (closed, silent, or unreadable).
    Every message is queued for the commit as it is read (its task starts in order, and parses and joins the batch
    before it first waits), so one peer's messages are applied in the order it sent them."""
    idle = receiver.settings.hl7.idle_seconds
    try:
        while True:
            await room.acquire()
            try:
                async with asyncio.timeout(idle):  # no task of its own: a frame already buffered is read at once
                    block = await reader.readblock()
            except InvalidBlockError:
                answers.put_nowait((_ready(_reject("MLLP", "a frame must start with <VT> (0x0B)", receiver)), None))
                continue
            except ValueError:  # the limit: the rest of the frame is unreadable, so the connection ends
                limit = receiver.settings.hl7.max_message_bytes
                refusal = _reject("MLLP", f"a message must be {limit} bytes or fewer", receiver)
                answers.put_nowait((_ready(refusal), None))
                return
            except (asyncio.IncompleteReadError, TimeoutError):  # closed (maybe mid-message) or silent too long
                return
            answers.put_nowait((asyncio.ensure_future(receiver.receive(block)), block))
    except (ConnectionError, OSError):
        return
    finally:
        answers.put_nowait(None)


def _ready(answer: str) -> asyncio.Future[str]:
    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    future.set_result(answer)
    return future


def _reject(where: str, message: str, receiver: Receiver) -> str:
    return ack(
        None, REJECT, control_id="HUB0", now=receiver.clock.now(), text=message, problems=(Problem(where, message),)
    )


async def start_listener(receiver: Receiver, *, host: str, port: int) -> asyncio.Server:
    async def connected(reader: HL7StreamReader, writer: HL7StreamWriter) -> None:
        await _connection(receiver, reader, writer)

    server: asyncio.Server = await start_hl7_server(
        connected, host, port, limit=receiver.settings.hl7.max_message_bytes, ssl=_tls(receiver.settings)
    )
    return server


async def run_listener(settings: Settings, *, host: str | None = None, port: int | None = None) -> None:
    """Until SIGTERM or SIGINT: then no new connections, and the database closed."""
    db = await open_database(settings)
    try:
        receiver = await make_receiver(db, settings, Clock())
        server = await start_listener(receiver, host=host or settings.hl7.host, port=port or settings.hl7.port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        address: Any = server.sockets[0].getsockname() if server.sockets else ""
        logger.info("HL7 MLLP listener on %s", address)
        await stop.wait()
        server.close()
        await server.wait_closed()
    finally:
        await db.close()
