"""The worker's Record Service job: tell the Aggregator which NHS numbers the hub holds appointments and letters
for, at most `batch` (5,000) a call, with retries and backoff, through OAuth 2.0 client credentials (or the API key
the Aggregator issued). Logs say how many numbers and what failed, never a number."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from hub.clock import Clock, london
from hub.db import Database
from hub.rules.fhir import latest_adult_birth_date
from hub.settings import RecordServiceSettings
from hub.store.record_service import (
    claim_due_numbers,
    claim_full_pass,
    count_attempts,
    mark_failed,
    mark_sent,
    queue_all_numbers,
    queue_new_numbers,
)
from hub.vocabulary import RecordResource

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=5)
FIRST_RETRY = timedelta(seconds=30)
LAST_RETRY = timedelta(hours=1)


class RecordServiceError(Exception):
    """A call that did not take: the message names the failure (a status, a kind of error), never a number."""


@dataclass
class RecordServiceClient:
    """The calls, and the access token between them (an HTTP client is opened for each round of calls)."""

    settings: RecordServiceSettings
    clock: Clock
    _token: str = ""
    _token_until: datetime | None = None

    def client_id(self, resource: RecordResource) -> str:
        s = self.settings
        return s.appointments_client_id if resource == RecordResource.APPOINTMENTS else s.documents_client_id

    async def _bearer(self, http: httpx.AsyncClient) -> str:
        s = self.settings
        if not s.token_url:
            return s.api_key
        now = self.clock.now()
        if self._token and self._token_until is not None and now < self._token_until:
            return self._token
        try:
            response = await http.post(
                s.token_url,
                data={"grant_type": "client_credentials"},
                auth=(s.client_id, s.client_secret),
                timeout=s.timeout_seconds,
            )
        except httpx.HTTPError as exc:
            raise RecordServiceError(f"token endpoint: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise RecordServiceError(f"token endpoint: {response.status_code}")
        try:
            body = response.json()
            self._token = str(body["access_token"])
            lifetime = int(body.get("expires_in", 300))
        except (ValueError, KeyError, TypeError) as exc:
            raise RecordServiceError("token endpoint: an answer without an access_token") from exc
        self._token_until = now + timedelta(seconds=max(lifetime - 30, 0))
        return self._token

    async def send(self, http: httpx.AsyncClient, resource: RecordResource, numbers: list[str]) -> None:
        body = {"clientId": self.client_id(resource), "nhsNumbers": numbers}
        headers = {"Authorization": f"Bearer {await self._bearer(http)}"}
        try:
            response = await http.post(
                self.settings.url, json=body, headers=headers, timeout=self.settings.timeout_seconds
            )
        except httpx.HTTPError as exc:
            raise RecordServiceError(type(exc).__name__) from exc
        if response.status_code == 401:
            self._token = ""  # perhaps expired early: the next try fetches a new one
        if response.status_code != 200:
            raise RecordServiceError(str(response.status_code))


def retry_delay(attempts: int, rng: random.Random) -> timedelta:
    """30 s, 1 min, 2 min ... up to an hour, with jitter, after the `attempts`-th failure."""
    base = min(FIRST_RETRY * 2 ** max(attempts - 1, 0), LAST_RETRY)
    return base * (0.5 + rng.random() / 2)


async def queue_numbers(db: Database, clock: Clock, *, everything: bool = False) -> int:
    """Find the numbers to tell: those new since the last look, and once a day (or with `everything`) every one not
    yet in the lists. Returns how many were queued."""
    now = clock.now()
    adult_by = latest_adult_birth_date(london(now).date())
    queued = 0
    for resource in RecordResource:
        queued += await queue_new_numbers(db, resource=resource, adult_born_by=adult_by, now=now)
        if everything or await claim_full_pass(db, resource=resource, now=now):
            queued += await queue_all_numbers(db, resource=resource, adult_born_by=adult_by, now=now)
    return queued


async def push_once(db: Database, client: RecordServiceClient, clock: Clock, rng: random.Random) -> int:
    """One batch per resource type that is due. Returns how many numbers the Aggregator took."""
    taken = 0
    async with httpx.AsyncClient() as http:
        for resource in RecordResource:
            taken += await _push(db, client, http, resource, clock, rng)
    return taken


async def _push(
    db: Database,
    client: RecordServiceClient,
    http: httpx.AsyncClient,
    resource: RecordResource,
    clock: Clock,
    rng: random.Random,
) -> int:
    if not client.client_id(resource):
        return 0  # this list is not in use: no client id was issued for it
    batch = client.settings.batch
    numbers = await claim_due_numbers(db, resource=resource, limit=batch, now=clock.now(), lease=LEASE)
    if not numbers:
        return 0
    try:
        await client.send(http, resource, numbers)
    except RecordServiceError as exc:
        attempts = await count_attempts(db, resource=resource, nhs_number=numbers[0])
        retry_at = clock.now() + retry_delay(attempts + 1, rng)
        await mark_failed(db, resource=resource, numbers=numbers, retry_at=retry_at, error=str(exc), now=clock.now())
        log.warning("record service %s: %d numbers not taken (%s); trying again later", resource, len(numbers), exc)
        return 0
    await mark_sent(db, resource=resource, numbers=numbers, now=clock.now())
    log.info("record service %s: %d numbers taken", resource, len(numbers))
    return len(numbers)
