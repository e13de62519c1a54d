"""The User Verification Code step: twins (or any records) sharing a mobile and a date of birth both match a sign-in,
and after the right security code the code printed on their letters says which record is theirs."""

from __future__ import annotations

from datetime import datetime, timedelta

from hub.clock import from_db
from hub.db import Database
from hub.store.signin import CodeResult, challenge_id, finish_sign_in

# After a right code, how long the step stays open, and how many wrong verification codes close it.
UVC_WINDOW = timedelta(minutes=10)
UVC_MAX_FAILURES = 5


async def awaiting_verification_code(db: Database, *, secret: str, token: str, now: datetime) -> bool:
    row = await db.fetch_one(
        "SELECT consumed_at, finished_at, uvc_failures FROM code_challenges WHERE id = ?",
        (challenge_id(secret, token),),
    )
    return bool(
        row
        and row["consumed_at"]
        and not row["finished_at"]
        and row["uvc_failures"] < UVC_MAX_FAILURES
        and now - from_db(row["consumed_at"]) < UVC_WINDOW
    )


async def choose_record_by_verification_code(
    db: Database, *, secret: str, token: str, verification_code: str, now: datetime
) -> CodeResult:
    """Twins sharing a mobile and a date of birth: the code printed on their letters says which record."""
    cid = challenge_id(secret, token)
    wanted = "".join(verification_code.split()).upper()
    async with db.write(keys=[f"challenge:{cid}"]) as tx:  # its failures are read, then written
        row = await tx.fetch_one(
            "SELECT consumed_at, uvc_failures FROM code_challenges WHERE id = ? AND consumed_at IS NOT NULL"
            " AND finished_at IS NULL",
            (cid,),
        )
        if row is None or row["uvc_failures"] >= UVC_MAX_FAILURES or now - from_db(row["consumed_at"]) >= UVC_WINDOW:
            return CodeResult("gone")
        matches = await tx.fetch_all(
            "SELECT p.id FROM code_challenge_candidates c JOIN patients p ON p.id = c.patient_id"
            " WHERE c.challenge_id = ? AND p.verification_code = ?",
            (cid, wanted),
        )
        if len(matches) != 1:
            failures = row["uvc_failures"] + 1
            await tx.execute("UPDATE code_challenges SET uvc_failures = ? WHERE id = ?", (failures, cid))
            return CodeResult("locked" if failures >= UVC_MAX_FAILURES else "wrong")
        return await finish_sign_in(tx, secret=secret, cid=cid, patient_id=int(matches[0]["id"]), now=now)
