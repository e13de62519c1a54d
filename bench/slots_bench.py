"""Slots and earlier appointments: python -m bench.slots_bench [--accept 0.1] [--seed 19] [--output FILE]

1. A simulated fortnight: a clinic of 2,000 booked patients (each appointment in a busy slot, 2 to 8 weeks ahead),
   200 of them asking for an earlier appointment, 100 cancellations at random times in clinic hours (the hospital
   sends the slot as free). Every 15 simulated minutes the worker's round runs (hub.store.offers.run_offers, with the
   hub's defaults: batches of 3, offers open 2 hours, quiet hours 20:00-08:00); each patient offered a slot accepts
   with the given probability (at a random moment inside the offer), or else declines or ignores it. A slot freed
   by an accepted offer (the patient's old one) is a freed slot too. Reports the share of freed slots refilled,
   offer messages per refill, and the time from free to refilled.
2. The booking write under contention: 100 patients at once, each choosing among 10 free slots and trying again
   on "gone" until they have one or none is left: bookings a second, and that exactly 10 were made.

Real store code (the hub's own functions, the lifecycle included) on fresh SQLite files. JSON on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import SECRET, emit, machine
from hub.clock import from_db
from hub.db import Database, connect
from hub.db.migrate import migrate
from hub.rules.slots import Window
from hub.settings import Settings, load_settings
from hub.store.offers import accept_offer, decline_offer, run_offers, set_earlier_request
from hub.store.slot_moves import reschedule_by_patient
from hub.store.slots import upsert_slot
from hub.web.common import Policies
from tests import factories

START = datetime(2027, 3, 1, 0, 0, tzinfo=UTC)  # a Monday, GMT
TICK = timedelta(minutes=15)
DAYS = 14


async def _fresh(url: str) -> Database:
    db = await connect(url)
    await migrate(db)
    return db


async def _clinic(db: Database, *, patients: int, now: datetime) -> tuple[int, list[tuple[int, int, int]]]:
    """The trust, its site and `patients` patients each with an appointment in a busy slot: (org, [(patient,
    appointment, slot)])."""
    made = []
    async with db.write() as tx:
        org = await factories.create_organisation(tx, code="RAL", name="Bench Trust", phone="020 7000 0000")
        site = await factories.create_site(tx, organisation_id=org, code="RFH", name="Royal Free Hospital")
        for i in range(patients):
            patient = await factories.create_patient(
                tx, organisation_id=org, now=now, mrn=f"MRN{i}", mobile=f"+447700{i:06d}", verification_code="ABC123"
            )
            # Clinic days, 08:00 to 18:00, 2 to 8 weeks ahead, 15 minutes each.
            start = now + timedelta(days=14 + (i // 40) % 42, hours=8 + (i % 40) // 4, minutes=15 * (i % 4))
            appointment = await factories.create_appointment(
                tx,
                organisation_id=org,
                site_id=site,
                patient_id=patient,
                now=now - timedelta(days=i % 90),
                starts_at=start,
                ref=f"A{i}",
            )
            slot = await factories.create_slot(
                tx,
                organisation_id=org,
                site_id=site,
                now=now,
                starts_at=start,
                ref=f"S{i}",
                status="busy",
                appointment_id=appointment,
            )
            made.append((patient, appointment, slot))
    return org, made


async def fortnight(url: str, settings: Settings, *, accept: float, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    db = await _fresh(url)
    policies = Policies.from_settings(settings)
    window = Window(policies.action.cutoff, settings.slots.window_days)
    try:
        org, clinic = await _clinic(db, patients=2000, now=START)
        waiting = rng.sample(clinic, 200)
        for patient, appointment, _ in waiting:
            await set_earlier_request(db, patient_id=patient, appointment_id=appointment, wanted=True, now=START)
        asking = {a for _, a, _ in waiting}
        # 100 cancellations in clinic hours over the fortnight, of patients not asking for an earlier time.
        others = [c for c in clinic if c[1] not in asking]
        cancelled = rng.sample(others, 100)
        when = sorted(
            START + timedelta(days=rng.randrange(DAYS), minutes=rng.randrange(8 * 60, 18 * 60)) for _ in cancelled
        )
        cancellations = list(zip(when, cancelled, strict=True))
        freed_at: dict[int, datetime] = {}  # slot -> when it became free
        refilled: dict[int, datetime] = {}
        answers: list[tuple[datetime, int, int, bool]] = []  # (when, patient, offer, accepts)
        seen_offers: set[int] = set()
        now = START
        while now < START + timedelta(days=DAYS):
            while cancellations and cancellations[0][0] <= now:
                _, (_, appointment, slot) = cancellations.pop(0)
                row = await db.fetch_one("SELECT * FROM slots WHERE id = ?", (slot,))
                assert row is not None
                async with db.write() as tx:
                    await upsert_slot(
                        tx,
                        organisation_id=org,
                        ref=row["ref"],
                        actor="pas",
                        now=now,
                        values={
                            "site_code": "RFH",
                            "clinic": row["clinic"],
                            "specialty": row["specialty"],
                            "clinician": row["clinician"],
                            "start": from_db(row["starts_at"]),
                            "duration_minutes": row["duration_minutes"],
                            "mode": row["mode"],
                            "status": "free",
                            "appointment_ref": None,
                        },
                    )
                freed_at[slot] = now
            await run_offers(db, settings=settings, now=now)
            for offer in await db.fetch_all(
                "SELECT id, patient_id, offered_at, expires_at FROM slot_offers WHERE status = 'offered'"
            ):
                if offer["id"] in seen_offers:
                    continue
                seen_offers.add(offer["id"])
                minutes = settings.slots.earlier_offer_minutes
                yes = rng.random() < accept
                if yes or rng.random() < 0.5:  # the rest ignore it and it lapses
                    answers.append(
                        (now + timedelta(minutes=rng.randrange(1, minutes)), offer["patient_id"], offer["id"], yes)
                    )
            answers.sort()
            while answers and answers[0][0] <= now + TICK:
                at, patient, offer_id, yes = answers.pop(0)
                if not yes:
                    await decline_offer(db, patient_id=patient, offer_id=offer_id, now=at)
                    continue
                slot_row = await db.fetch_one("SELECT slot_id FROM slot_offers WHERE id = ?", (offer_id,))
                assert slot_row is not None
                moved = await accept_offer(
                    db,
                    patient_id=patient,
                    offer_id=offer_id,
                    now=at,
                    policy=policies.action,
                    window=window,
                    settings=settings,
                )
                if moved.done:
                    refilled[int(slot_row["slot_id"])] = at
                    if moved.freed_slot_id is not None:
                        freed_at[moved.freed_slot_id] = at
            now += TICK
        messages = await db.fetch_one("SELECT COUNT(*) AS n FROM outbox_messages WHERE kind = 'earlier_offer'")
        offers = await db.fetch_all("SELECT status, COUNT(*) AS n FROM slot_offers GROUP BY status ORDER BY status")
        hours = [(refilled[s] - freed_at[s]).total_seconds() / 3600 for s in refilled if s in freed_at]
        n_msgs = int(messages["n"]) if messages else 0
        return {
            "patients": 2000,
            "asking_for_earlier": 200,
            "cancellations": 100,
            "accept_probability": accept,
            "freed_slots": len(freed_at),
            "freed_by_cancellation": 100,
            "freed_by_accepted_offers": len(freed_at) - 100,
            "refilled": len(refilled),
            "refilled_share": round(len(refilled) / len(freed_at), 3) if freed_at else 0,
            "offer_messages": n_msgs,
            "messages_per_refill": round(n_msgs / len(refilled), 2) if refilled else None,
            "hours_to_refill_median": round(statistics.median(hours), 2) if hours else None,
            "hours_to_refill_p90": round(statistics.quantiles(hours, n=10)[-1], 2) if len(hours) > 1 else None,
            "offers_by_status": {r["status"]: int(r["n"]) for r in offers},
        }
    finally:
        await db.close()


async def contention(url: str, settings: Settings, *, seed: int) -> dict[str, Any]:
    """100 patients, 10 free slots, all at once."""
    rng = random.Random(seed)
    db = await _fresh(url)
    policies = Policies.from_settings(settings)
    window = Window(policies.action.cutoff, settings.slots.window_days)
    try:
        org, clinic = await _clinic(db, patients=100, now=START)
        site = await db.fetch_one("SELECT id FROM sites")
        assert site is not None
        async with db.write() as tx:
            free = [
                await factories.create_slot(
                    tx,
                    organisation_id=org,
                    site_id=int(site["id"]),
                    now=START,
                    ref=f"FREE{i}",
                    starts_at=START + timedelta(days=3, hours=9, minutes=15 * i),
                )
                for i in range(10)
            ]
        attempts = 0

        async def patient(patient_id: int, appointment_id: int) -> bool:
            nonlocal attempts
            choices = free[:]
            rng.shuffle(choices)
            for slot in choices:
                attempts += 1
                moved = await reschedule_by_patient(
                    db,
                    patient_id=patient_id,
                    appointment_id=appointment_id,
                    slot_id=slot,
                    now=START,
                    policy=policies.action,
                    window=window,
                    settings=settings,
                )
                if moved.done:
                    return True
            return False

        began = time.perf_counter()
        results = await asyncio.gather(*(patient(p, a) for p, a, _ in clinic))
        elapsed = time.perf_counter() - began
        busy = await db.fetch_one("SELECT COUNT(*) AS n FROM slots WHERE ref LIKE 'FREE%' AND status = 'busy'")
        return {
            "patients": 100,
            "slots": 10,
            "bookings": sum(results),
            "slots_busy_after": int(busy["n"]) if busy else 0,
            "attempts": attempts,
            "seconds": round(elapsed, 3),
            "bookings_per_second": round(sum(results) / elapsed, 1),
            "attempts_per_second": round(attempts / elapsed, 1),
        }
    finally:
        await db.close()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine()}
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'fortnight.sqlite3'}"
        settings = load_settings(
            environ={}, overrides={"database_url": url, "secret_key": SECRET, "slots.window_days": 70}
        )
        began = time.perf_counter()
        results["fortnight"] = await fortnight(url, settings, accept=args.accept, seed=args.seed)
        results["fortnight"]["run_seconds"] = round(time.perf_counter() - began, 1)
        results["contention"] = await contention(
            f"sqlite:///{Path(folder) / 'contention.sqlite3'}", settings, seed=args.seed
        )
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accept", type=float, default=0.1, help="chance a patient takes an offer (Fast Pass: 8-11%%)")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--output", type=Path, default=None)
    arguments = parser.parse_args()
    emit(asyncio.run(main(arguments)), arguments.output)
