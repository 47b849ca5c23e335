"""Assembles one server process: store, service, executor and daemon, built from Config."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from jobyard import ids
from jobyard.config import Config
from jobyard.core.clusters import ClusterService, build_catalog
from jobyard.core.jobs import JobService, Limits
from jobyard.core.models import Job, Principal
from jobyard.core.operations import OperationService
from jobyard.core.volumes import VolumeService
from jobyard.daemon.daemon import Daemon
from jobyard.daemon.hooks import AttemptHooks
from jobyard.daemon.inventory import Allocator, Inventory, detect_inventory
from jobyard.daemon.leader import Leadership
from jobyard.daemon.periodic import Periodic
from jobyard.daemon.retention import Retention
from jobyard.daemon.schedules import ScheduleRunner
from jobyard.events.delivery import DeliveryWorker
from jobyard.events.hub import EventHub
from jobyard.events.notify import Notifier
from jobyard.events.webhooks import url_checker
from jobyard.executors.base import Executor
from jobyard.executors.workspaces import workspaces_dir
from jobyard.operations.clusters import ClusterHandlers
from jobyard.operations.processor import OperationProcessor
from jobyard.operations.teardown import ClusterTeardown
from jobyard.operations.volumes import VolumeHandlers
from jobyard.store import migrate
from jobyard.store.engine import Engines, make_engines
from jobyard.store.purge import remove_job_files
from jobyard.store.sql import SqlStore
from jobyard.telemetry.cost import Prices
from jobyard.telemetry.gpu import gpu_probe

log = logging.getLogger(__name__)
SECRET_KEY = "server_secret"
T = TypeVar("T")


@dataclass
class Runtime:
    config: Config
    engines: Engines
    store: SqlStore
    service: JobService
    notifier: Notifier
    inventory: Inventory
    executor: Executor
    daemon: Daemon | None
    secret: bytes = b""  # signs job tokens; made once per store
    new_admin_key: str | None = None  # set on first start only, to print once
    _daemon_task: asyncio.Task[None] | None = field(default=None, repr=False)
    _webhook_task: asyncio.Task[None] | None = field(default=None, repr=False)
    _operations_task: asyncio.Task[None] | None = field(default=None, repr=False)
    volumes: VolumeService = field(init=False, repr=False)
    operations_view: OperationService = field(init=False, repr=False)
    clusters: ClusterService = field(init=False, repr=False)
    operations: OperationProcessor | None = field(init=False, repr=False, default=None)
    # Leader-only housekeeping (retention, schedules); None without a daemon.
    periodic: Periodic | None = field(init=False, repr=False, default=None)
    _periodic_task: asyncio.Task[None] | None = field(default=None, repr=False)
    hub: EventHub = field(init=False, repr=False)
    prices: Prices = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.hub = EventHub(self.store.jobs, self.notifier, self.read)
        self.prices = Prices.from_config(self.config)
        # Checked against the inventory: a type that does not fit stops the start.
        catalog = build_catalog(self.config.instance_types, self.inventory.capacity)
        if self.daemon is not None:
            daemon, lead = self.daemon, self.daemon.leadership
            # Operations wait for reconcile: cluster handlers need the rebuilt allocator.
            self.operations = OperationProcessor(
                self.store, self.config, lambda: (lead is None or lead.held) and daemon.ready)
            VolumeHandlers(self.store, self.config.data_dir).register(
                self.operations, self.config.storage_usage_interval_s)
            ClusterHandlers(self.store, daemon, catalog).register(self.operations)
        nudge = self.operations.nudge if self.operations else lambda: None
        self.volumes = VolumeService(self.store, nudge)
        self.operations_view = OperationService(self.store, self.store.clock)
        self.clusters = ClusterService(self.store, catalog, self.volumes,
                                       self.config.org_max_gpus, nudge)
        self.service.check_cluster = self.clusters.check_job
        if self.daemon is not None:  # needs the cluster service, so not in attempt_hooks()
            self.daemon.hooks.append(ClusterTeardown(self.clusters))
            lead = self.daemon.leadership
            self.periodic = Periodic(lambda: lead is None or lead.held)
            self.periodic.every("retention", self.config.retention_interval_s,
                                Retention(self.config, self.store).sweep)
            self.periodic.every("schedules", ScheduleRunner.INTERVAL_S, ScheduleRunner(
                self.store, self.service, self.clusters).tick)  # and idle Integrate.io clusters

    def delete_job(self, who: Principal, ref: int | str) -> Job:
        """Delete a finished job for good: its rows, then its logs, outputs and workspace
        (409 while it is active). Every API's delete goes through here."""
        job = self.service.delete(who, ref)
        remove_job_files(self.config.data_dir, job, workspaces_dir(self.config.data_dir))
        return job

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a store read on the loop where that is cheaper than a thread (see Engines)."""
        if self.engines.reads_inline:
            return fn(*args)
        return await asyncio.to_thread(fn, *args)

    async def start(self) -> None:
        self.notifier.bind(asyncio.get_running_loop())
        await self.executor.start()
        if self.daemon is not None:
            self._daemon_task = asyncio.create_task(self.daemon.run(), name="jobyard-daemon")
            # Webhook deliveries: beside the daemon, so only the leader sends them.
            lead = self.daemon.leadership
            worker = DeliveryWorker.from_config(self.config, self.store.webhooks,
                                                lambda: lead is None or lead.held)
            self._webhook_task = asyncio.create_task(worker.run(), name="jobyard-webhooks")
        if self.operations is not None:  # async operations: on the leader too
            self._operations_task = asyncio.create_task(self.operations.run(),
                                                      name="jobyard-operations")
        if self.periodic is not None:
            self._periodic_task = asyncio.create_task(self.periodic.run(),
                                                      name="jobyard-periodic")

    async def stop(self) -> None:
        # In-flight deliveries stay pending and operations PROCESSING: both are taken up again.
        for task in (self._webhook_task, self._operations_task, self._periodic_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.hub.close()
        if self.daemon is not None:
            await self.daemon.shutdown()
        if self._daemon_task is not None:
            self._daemon_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._daemon_task
        await self.executor.close()
        self.engines.dispose()


def build_runtime(
    config: Config, with_daemon: bool = True, executor: Executor | None = None
) -> Runtime:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    engines = make_engines(config.resolved_database_url)
    migrate.upgrade(engines.write)
    notifier = Notifier()
    store = SqlStore(engines, on_change=notifier.notify)
    new_key = bootstrap(store, config)
    secret = server_secret(store)
    inventory = detect_inventory(config)
    service = JobService(
        store,
        inventory.capacity,
        Limits(config.max_command_chars, config.max_env_vars, config.max_env_bytes),
        on_intent=notifier.wake_daemon,
        check_webhook=url_checker(config.webhook_allowed_networks),
    )
    if executor is None:
        from jobyard.executors.local import LocalExecutor

        executor = LocalExecutor()
    daemon = None
    if with_daemon:
        leadership = Leadership(engines, config.data_dir)
        daemon = Daemon(
            config, store, executor, Allocator(inventory), notifier, leadership,
            gpu_probe=gpu_probe(inventory.gpu_source), secret=secret,
            hooks=attempt_hooks(config, store, notifier, inventory),
        )
    return Runtime(
        config, engines, store, service, notifier, inventory, executor, daemon, secret, new_key
    )


def attempt_hooks(
    config: Config, store: SqlStore, notifier: Notifier, inventory: Inventory
) -> list[AttemptHooks]:
    """The daemon's attempt hooks, in the order they run (one line each)."""
    from jobyard.operations.mounts import VolumeMounts
    from jobyard.outputs.collector import OutputCollector
    from jobyard.telemetry.sampler import ResourceSampler
    from jobyard.telemetry.tqdm_watch import TqdmWatcher

    hooks: list[AttemptHooks] = [OutputCollector(config, store)]
    hooks.append(ResourceSampler(config, store, inventory))  # metrics, cost, budgets
    hooks.append(TqdmWatcher(store))  # progress read off tqdm bars
    hooks.append(VolumeMounts(store, config.data_dir))  # attached volumes, quota at job end
    return hooks


def server_secret(store: SqlStore) -> bytes:
    """The store's signing secret, made on first use (shared by every replica)."""
    value = store.kv.get_kv(SECRET_KEY)
    if value is None:
        store.kv.put_kv(SECRET_KEY, secrets.token_hex(32))
        value = store.kv.get_kv(SECRET_KEY)
    return bytes.fromhex(value)


def bootstrap(store: SqlStore, config: Config) -> str | None:
    """On a new store: an org, an admin user and an admin key. Returns a generated key."""
    if not store.accounts.is_empty():
        return None
    store.accounts.create_org("default")
    admin = store.accounts.create_user("admin", "default", is_admin=True)
    secret = config.bootstrap_admin_key or ids.api_key()
    store.accounts.create_key(admin["id"], ids.hash_key(secret), secret[:10], "bootstrap admin key")
    return None if config.bootstrap_admin_key else secret

