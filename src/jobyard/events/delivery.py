"""The webhook delivery worker: sends outbox rows, retries with backoff, logs every attempt.

Runs on the leader only (beside the daemon). It wakes when this process commits outbox rows,
when a retry falls due, and every ``webhook_poll_interval_s`` for rows other replicas wrote.
Each attempt POSTs the stored payload, signed (Standard Webhooks), to the one address it
checked: the host is resolved first and the request refused if *any* of its addresses is
private, loopback, link-local, multicast or reserved (unless in ``webhook_allowed_networks``);
the connection then goes to that address (no second lookup to rebind), and redirects are
never followed. A 2xx is delivered; anything else is retried after
``webhook_retry_schedule_s[n]``, and fails for good when the schedule is spent. A delivery
cut short by a shutdown is sent again by the next leader: at least once, not exactly once.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx
import orjson

from jobyard import __version__
from jobyard.config import Config
from jobyard.core.ports import Delivery, WebhookStore
from jobyard.core.webhooks import message_id
from jobyard.events import webhooks as wh
from jobyard.events.notify import call_in_loop, within

log = logging.getLogger(__name__)
Resolver = Callable[[str, int], Awaitable[list[str]]]


class TargetRefused(Exception):
    """The webhook's host resolves to an address this server may not send to."""


async def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (IPv4 and IPv6)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def pinned_request(
    url: str, allowed: Sequence[wh.Network], resolver: Resolver = resolve
) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
    """Check ``url``'s host and pin it to one checked address.

    Returns the URL to connect to, the headers that keep the original name (``Host``) and the
    request extensions (TLS server name); raises :class:`TargetRefused`.
    """
    problem = wh.url_problem(url, allowed)
    if problem:
        raise TargetRefused(problem)
    target = httpx.URL(url)
    host = target.raw_host.decode("ascii")  # IDNA-encoded, as resolvers and TLS want it
    try:
        addresses = await resolver(host, target.port or 0)
    except OSError as exc:
        raise httpx.ConnectError(f"cannot resolve {host}: {exc}") from exc
    if not addresses:
        raise httpx.ConnectError(f"{host} has no address")
    for address in addresses:
        if wh.address_refused(ipaddress.ip_address(address.split("%", 1)[0]), allowed):
            raise TargetRefused(f"{host} resolves to {address}, a private or reserved"
                                " address that webhook_allowed_networks does not allow")
    extensions = {"sni_hostname": host} if target.scheme == "https" else {}
    headers = {"Host": target.netloc.decode("ascii")}
    return target.copy_with(host=addresses[0]), headers, extensions


class DeliveryWorker:
    def __init__(
        self,
        store: WebhookStore,
        schedule: Sequence[float],
        timeout_s: float = 10.0,
        concurrency: int = 8,
        allowed: Sequence[wh.Network] = (),
        poll_s: float = 1.0,
        is_leader: Callable[[], bool] = lambda: True,
        clock: Callable[[], float] = time.time,
        resolver: Resolver = resolve,
    ):
        self.store = store
        self.schedule = list(schedule)
        self.timeout_s = timeout_s
        self.concurrency = max(1, concurrency)
        self.allowed = list(allowed)
        self.poll_s = poll_s
        self.is_leader = is_leader
        self.clock = clock
        self.resolver = resolver
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._inflight: dict[int, asyncio.Task[None]] = {}
        store.add_outbox_listener(self.nudge)

    @classmethod
    def from_config(
        cls, config: Config, store: WebhookStore, is_leader: Callable[[], bool]
    ) -> DeliveryWorker:
        return cls(
            store, config.webhook_retry_schedule_s, config.webhook_timeout_s,
            config.webhook_concurrency, wh.parse_networks(config.webhook_allowed_networks),
            config.webhook_poll_interval_s, is_leader,
        )

    def nudge(self) -> None:
        """Look at the outbox now (thread-safe)."""
        if self._wake is not None:
            call_in_loop(self._loop, self._wake.set)

    def retry_at(self, attempts: int, now: float) -> float | None:
        """When to try again after ``attempts`` failed attempts; None once the schedule is spent."""
        if attempts - 1 < len(self.schedule):
            return now + self.schedule[attempts - 1]
        return None

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        while not self.is_leader():
            await self._sleep(self.poll_s)
        client = httpx.AsyncClient(
            follow_redirects=False, trust_env=False, timeout=self.timeout_s,
            limits=httpx.Limits(max_keepalive_connections=0),
            headers={"User-Agent": f"Jobyard-Webhooks/{__version__}",
                     "Content-Type": "application/json"},
        )
        try:
            while True:
                self._wake.clear()
                free = self.concurrency - len(self._inflight)
                if free > 0:
                    try:
                        due = await asyncio.to_thread(
                            self.store.due_deliveries, self.clock(), free, set(self._inflight)
                        )
                    except Exception:
                        log.exception("webhooks: reading the outbox failed")
                        due = []
                    for delivery in due:
                        self._inflight[delivery.id] = asyncio.create_task(
                            self._deliver(client, delivery), name=f"webhook-{delivery.id}"
                        )
                await self._sleep(self.poll_s)
        finally:
            tasks = list(self._inflight.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await client.aclose()

    async def _sleep(self, seconds: float) -> None:
        assert self._wake is not None
        await within(self._wake.wait(), seconds)

    async def _deliver(self, client: httpx.AsyncClient, d: Delivery) -> None:
        started = self.clock()
        entry: dict[str, Any] = {"attempt": d.attempts + 1, "ts": started, "status": None,
                                 "error": None}
        ok, give_up = False, False
        try:
            async with asyncio.timeout(self.timeout_s):
                entry["status"] = await self._send(client, d)
            ok = 200 <= entry["status"] < 300
            if not ok:
                entry["error"] = f"HTTP {entry['status']}"
        except TargetRefused as exc:
            entry["error"], give_up = f"refused: {exc}", True
        except TimeoutError:
            entry["error"] = f"timed out after {self.timeout_s:g}s"
        except (httpx.HTTPError, OSError) as exc:
            entry["error"] = f"{type(exc).__name__}: {exc}".rstrip(": ")
        except Exception as exc:  # a bug must not stop the worker; the row stays retried
            log.exception("webhooks: delivery %s failed unexpectedly", d.id)
            entry["error"] = f"internal error: {type(exc).__name__}"
        entry["duration_ms"] = round((self.clock() - started) * 1000, 1)
        now = self.clock()
        retry_at = None if ok or give_up else self.retry_at(d.attempts + 1, now)
        try:
            await asyncio.to_thread(self.store.record_attempt, d.id, entry, ok, retry_at)
        except Exception:
            log.exception("webhooks: recording delivery %s failed", d.id)
        finally:
            self._inflight.pop(d.id, None)
        if retry_at is not None and self._loop is not None:
            self._loop.call_later(max(0.0, retry_at - self.clock()), self.nudge)
        self.nudge()  # a slot is free

    async def _send(self, client: httpx.AsyncClient, d: Delivery) -> int:
        secret = d.secret
        if secret is None:  # made on first use
            secret = (await asyncio.to_thread(self.store.user_webhook, d.user_id))["secret"]
        url, headers, extensions = await pinned_request(d.url, self.allowed, self.resolver)
        body = orjson.dumps(d.payload)
        headers |= wh.sign_headers(secret, message_id(d.id), int(time.time()), body)
        request = client.build_request("POST", url, content=body, headers=headers,
                                       extensions=extensions)
        response = await client.send(request, stream=True)
        await response.aclose()  # the status is all we need
        return response.status_code
