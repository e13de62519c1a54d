"""The worker's HL7 job: the hospital's events sent to the PAS's MLLP endpoint as SRM^S03 / SRM^S04
(hub.rules.hl7_outbound), one at a time on one connection, each answered before the next goes (MLLP's original
mode), in event order.

- AA: sent; the cursor moves on.
- AE or AR: recorded, a task for the booking centre, and the cursor moves on (the same message would get the same
  answer again).
- No answer (connection refused or dropped, a timeout, an answer that is not an ACK of this message): the same
  event goes again after a backoff, and nothing after it goes first.

The events are durable before the patient's action is answered (written in the same transaction); a worker killed
between sending and recording leaves the event to be sent again by the next claim, with the same control id, which
the PAS drops as a duplicate. So each event is applied by the PAS once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from dataclasses import dataclass
from datetime import timedelta

from hl7.mllp import HL7StreamReader, HL7StreamWriter, InvalidBlockError, open_hl7_connection

from hub.clock import Clock
from hub.db import Database
from hub.rules.hl7_outbound import Answer, Envelope, OutboundEvent, control_id, read_answer, retry_wait, srm, trigger
from hub.settings import Hl7OutboundSettings, Settings, SettingsError
from hub.store import hl7_outbound as store

log = logging.getLogger(__name__)
LEASE_MARGIN = timedelta(seconds=2)
# A slow PAS must not hold up the worker's other jobs (the outbox, the sweep): a round sends for this long at most,
# plus the exchange under way.
ROUND_SECONDS = 5.0
_ANSWER_BYTES = 1_000_000
_NO_ANSWER = (OSError, TimeoutError, asyncio.IncompleteReadError, InvalidBlockError, ValueError)


class _NoAnswer(Exception):
    pass


@dataclass(frozen=True)
class Hl7Sender:
    """What every round needs: where the PAS is, how to name ourselves, whose events, and the lease a claim takes."""

    settings: Hl7OutboundSettings
    envelope: Envelope
    organisation_id: int
    locations: dict[str, str]  # site code -> the PAS's location code (hl7.locations read backwards)
    lease: timedelta

    @property
    def timeout(self) -> float:
        return float(self.settings.timeout_seconds)


async def make_sender(db: Database, settings: Settings) -> Hl7Sender | None:
    """None when sending is off; SettingsError when the organisation is not one the hub has."""
    outbound = settings.hl7.outbound
    if not outbound.enabled:
        return None
    organisation_id = await store.start_cursor(db, outbound.organisation)
    if organisation_id is None:
        raise SettingsError(
            f"hl7.outbound.organisation names an organisation the hub does not have: {outbound.organisation}"
        )
    if outbound.tls_ca_file:
        _tls(outbound)  # a missing or unreadable file stops start-up, not the first send
    timeout = timedelta(seconds=outbound.timeout_seconds)
    return Hl7Sender(
        settings=outbound,
        envelope=Envelope(
            sending_application=outbound.sending_application,
            sending_facility=outbound.sending_facility,
            receiving_application=outbound.receiving_application,
            receiving_facility=outbound.receiving_facility,
        ),
        organisation_id=organisation_id,
        locations=_locations(settings.hl7.locations, outbound.organisation),
        # Connecting and one exchange, each within the timeout, always fit in a claim.
        lease=max(timedelta(seconds=settings.worker.lease_seconds), 2 * timeout + LEASE_MARGIN),
    )


def _locations(entries: list[str], organisation: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for entry in entries:
        org, _, rest = entry.partition(":")
        code, _, site = rest.partition("=")
        if org.strip() == organisation and code.strip() and site.strip():
            found.setdefault(site.strip(), code.strip())
    return found


def _tls(settings: Hl7OutboundSettings) -> ssl.SSLContext | None:
    if not settings.tls:
        return None
    return ssl.create_default_context(cafile=settings.tls_ca_file or None)


async def send_once(db: Database, sender: Hl7Sender, clock: Clock) -> int:
    """One claim's worth: up to `batch` events sent and answered. Returns how many were answered (or passed over)."""
    if not await store.has_work(db, sender.organisation_id, now=clock.now()):
        return 0
    claim = await store.claim_cursor(db, sender.organisation_id, now=clock.now(), lease=sender.lease)
    if claim is None:
        return 0
    token, after, attempts = claim
    writer: HL7StreamWriter | None = None
    done = 0
    began = asyncio.get_running_loop().time()
    try:
        events = await store.next_events(
            db, sender.organisation_id, after=after, limit=sender.settings.batch, locations=sender.locations
        )
        for event_id, event in events:
            if event is None:
                if not await store.pass_over(
                    db, sender.organisation_id, token, up_to=event_id, now=clock.now(), lease=sender.lease
                ):
                    return done
                done += 1
                continue
            if not await store.holds(
                db, sender.organisation_id, token, until=clock.now() + timedelta(seconds=2 * sender.timeout)
            ):
                return done  # too little of the lease left to connect and wait for an answer
            try:
                if writer is None:
                    reader, writer = await asyncio.wait_for(
                        open_hl7_connection(
                            sender.settings.host, sender.settings.port, limit=_ANSWER_BYTES, ssl=_tls(sender.settings)
                        ),
                        sender.timeout,
                    )
                answer = await _exchange(reader, writer, event, sender)
            except (*_NO_ANSWER, _NoAnswer) as exc:
                attempts += 1
                wait = retry_wait(
                    attempts,
                    first=timedelta(seconds=sender.settings.retry_first_seconds),
                    most=timedelta(seconds=sender.settings.retry_max_seconds),
                )
                # Its kind only: no part of a message (or the PAS's answer) in the log.
                log.warning(
                    "HL7 event %d not answered (%s, attempt %d); again in %.0f s",
                    event.id,
                    type(exc).__name__,
                    attempts,
                    wait.total_seconds(),
                )
                await store.record_failure(
                    db, sender.organisation_id, token, error=type(exc).__name__, retry_at=clock.now() + wait
                )
                return done
            recorded = await store.record_answer(
                db,
                sender.organisation_id,
                token,
                event=event,
                control_id=control_id(event.id),
                message_type=f"SRM^{trigger(event.kind)}",
                answer=answer,
                attempts=attempts + 1,
                now=clock.now(),
                lease=sender.lease,
            )
            if not recorded:
                return done  # another worker holds the cursor now: it sends from here
            log.info("HL7 event %d (%s) answered %s", event.id, event.kind, answer.code)
            attempts = 0
            done += 1
            if asyncio.get_running_loop().time() - began > ROUND_SECONDS:
                break
        return done
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        await store.release(db, sender.organisation_id, token)


async def _exchange(
    reader: HL7StreamReader, writer: HL7StreamWriter, event: OutboundEvent, sender: Hl7Sender
) -> Answer:
    message = srm(event, sender.envelope)
    writer.writeblock(message.encode("utf-8"))
    await asyncio.wait_for(writer.drain(), sender.timeout)
    block = await asyncio.wait_for(reader.readblock(), sender.timeout)
    answer = read_answer(block, control_id(event.id))
    if answer is None:
        raise _NoAnswer("not an acknowledgement of this message")
    return answer
