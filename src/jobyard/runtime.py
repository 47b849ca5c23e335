"""Assembles one server process from Config: store, services, executor, daemon and its
plug-ins, in dependency order, each given what it needs when it is made."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from jobyard import ids
from jobyard.config import Config
from jobyard.core.accounts import AccountService
from jobyard.core.clusters import ClusterService, build_catalog
from jobyard.core.cost import Prices
from jobyard.core.endpoints import EndpointService
from jobyard.core.files import JobFileService
from jobyard.core.jobs import JobService, Limits
from jobyard.core.operations import OperationService
from jobyard.core.packages import PackageService
from jobyard.core.services import SchedulerView, ServerInfo, Services
from jobyard.core.telemetry import TelemetryService
from jobyard.core.tokens import Signer
from jobyard.core.volumes import VolumeService
from jobyard.daemon.daemon import Daemon
from jobyard.daemon.hooks import AttemptHook, Stopper
from jobyard.daemon.inventory import Allocator, Inventory, detect_inventory
from jobyard.daemon.leader import Leadership
from jobyard.daemon.periodic import Periodic
from jobyard.daemon.plugins.mounts import Measure, VolumeMounts
from jobyard.daemon.plugins.outputs import OutputCollector
from jobyard.daemon.plugins.sampler import ResourceSampler
from jobyard.daemon.plugins.teardown import ClusterTeardown
from jobyard.daemon.plugins.tqdm_watch import TqdmWatcher
from jobyard.daemon.plugins.workspaces import WorkspaceFetch
from jobyard.daemon.retention import Retention
from jobyard.daemon.schedules import ScheduleRunner
from jobyard.events.delivery import DeliveryWorker
from jobyard.events.hub import EventHub
from jobyard.events.notify import Notifier
from jobyard.events.webhooks import url_checker
from jobyard.executors import identity
from jobyard.executors.base import Executor
from jobyard.operations.clusters import ClusterHandlers
from jobyard.operations.processor import OperationProcessor
from jobyard.operations.volumes import VolumeHandlers
from jobyard.store import migrate
from jobyard.store.engine import FENCE, Engines, Fence, make_engines
from jobyard.store.files import DiskFiles, make_dirs, prepare_data_dir
from jobyard.store.sql import SqlStore
from jobyard.telemetry.gpu import gpu_probe, gpu_stats

if TYPE_CHECKING:
    from jobyard.events.replicas import PgChannel

log = logging.getLogger(__name__)
SECRET_KEY = "server_secret"
# Threads for file work: collecting outputs, unpacking projects, reading followed logs. Its own
# small pool, so that no job's files can hold the default executor that routes and the daemon
# share (each piece of file work is bounded too: store/files.py, daemon/plugins/outputs.py).
FILE_WORKERS = 4
T = TypeVar("T")


@dataclass
class Runtime:
    """One server process: what the API serves (``services``) and what runs behind it."""

    config: Config
    engines: Engines
    store: SqlStore
    notifier: Notifier
    inventory: Inventory
    executor: Executor
    services: Services
    hub: EventHub
    daemon: Daemon | None = None
    # Async operations and leader-only housekeeping (retention, schedules); None without a
    # daemon.
    operations: OperationProcessor | None = None
    periodic: Periodic | None = None
    new_admin_key: str | None = None  # set on first start only, to print once
    file_pool: ThreadPoolExecutor | None = None  # file work (FILE_WORKERS threads)
    channel: PgChannel | None = None  # wake-ups to and from the other replicas (PostgreSQL)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list, repr=False)
    _daemon_task: asyncio.Task[None] | None = field(default=None, repr=False)

    async def start(self) -> None:
        self.notifier.bind(asyncio.get_running_loop())
        if not self.engines.is_sqlite:
            from jobyard.events.replicas import PgChannel  # psycopg: the postgres extra

            self.channel = PgChannel(self.engines.write.url.render_as_string(hide_password=False),
                                     self.notifier)
            self.channel.start()
        await self.executor.start()
        if self.daemon is None:
            return
        # Deliveries, operations and housekeeping run beside the daemon: only the leader's do.
        lead = self.daemon.leadership
        fence = lead.fence if lead else None  # their writes too are the leader's alone
        worker = DeliveryWorker.from_config(self.config, self.store.webhooks,
                                            lambda: lead is None or lead.held)
        self._tasks.append(asyncio.create_task(fenced(fence, worker.run()),
                                               name="jobyard-webhooks"))
        if self.operations is not None:
            self._tasks.append(asyncio.create_task(fenced(fence, self.operations.run()),
                                                   name="jobyard-operations"))
        if self.periodic is not None:
            self._tasks.append(asyncio.create_task(fenced(fence, self.periodic.run()),
                                                   name="jobyard-periodic"))
        self._daemon_task = asyncio.create_task(self.daemon.run(), name="jobyard-daemon")

    async def stop(self) -> None:
        # In-flight deliveries stay pending and operations PROCESSING: both are taken up again.
        for task in self._tasks:
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
        if self.channel is not None:
            await asyncio.to_thread(self.channel.stop)
        if self.file_pool is not None:
            self.file_pool.shutdown(wait=False, cancel_futures=True)
        self.engines.dispose()

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a store read on the loop where that is cheaper than a thread (see Engines)."""
        if self.engines.reads_inline:
            return fn(*args)
        return await asyncio.to_thread(fn, *args)


def build_runtime(
    config: Config, with_daemon: bool = True, executor: Executor | None = None
) -> Runtime:
    tenants = identity.active(config.job_identity) != "none"
    if tenants:
        problem = identity.range_problem(*config.job_uid_range)
        make_dirs(config.data_dir, passable=True)
        if closed := identity.closed_parent(str(config.data_dir)):
            problem = (f"the data dir's parent {closed} is closed to other users (no o+x): use a "
                       "data dir they can pass through, e.g. /var/lib/jobyard")
        if problem:
            raise ValueError(f"cannot run jobs as tenants' own identities: {problem} "
                             "(or set job_identity = \"none\")")
    prepare_data_dir(config.data_dir, tenants)
    engines = make_engines(config.resolved_database_url, config.db_busy_timeout_s)
    migrate.upgrade(engines.write)
    notifier = Notifier()
    store = SqlStore(engines, on_change=notifier.notify)
    new_key = bootstrap(store, config)
    signer = Signer(server_secret(store))
    inventory = detect_inventory(config)
    prices = Prices.from_config(config)
    # Checked against the inventory: a type that does not fit stops the start.
    catalog = build_catalog(config.instance_types, inventory.capacity)
    if executor is None:
        from jobyard.executors.local import LocalExecutor

        executor = LocalExecutor(cgroups=config.cgroups, pids_max=config.job_pids_max,
                                 gpu_devices=config.gpu_devices, identity=config.job_identity,
                                 namespaces=config.job_namespaces)
    allocator = Allocator(inventory)
    leadership = Leadership(engines, config.data_dir, config.leader_lease_s) \
        if with_daemon else None
    daemon: Daemon | None = None
    reconciled = threading.Event()  # set by the daemon once its allocator is rebuilt

    def leads() -> bool:
        return leadership is None or leadership.held

    processor = None
    volume_handlers = VolumeHandlers(store, config.data_dir)
    if with_daemon:  # operations wait for reconcile: cluster handlers need the rebuilt allocator
        processor = OperationProcessor(store, config, lambda: leads() and reconciled.is_set())
        volume_handlers.register(processor, config.storage_usage_interval_s)
        ClusterHandlers(store, allocator, notifier, catalog).register(processor)
    nudge = processor.nudge if processor is not None else (lambda: None)

    async def read(fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args) if engines.reads_inline else await asyncio.to_thread(fn, *args)

    hub = EventHub(store.jobs, notifier, read)
    files = DiskFiles(config.data_dir)
    file_pool = ThreadPoolExecutor(FILE_WORKERS, thread_name_prefix="jobyard-files")
    check_webhook = url_checker(config.webhook_allowed_networks)
    volumes = VolumeService(store.volumes, nudge)
    clusters = ClusterService(store.clusters, store.volumes, store.kv, catalog, volumes,
                              config.org_max_gpus, nudge)
    jobs = JobService(
        store.jobs, store.kv, inventory.capacity,
        Limits(config.max_command_chars, config.max_env_vars, config.max_env_bytes),
        on_intent=notifier.wake_daemon, check_webhook=check_webhook,
        check_cluster=clusters.check_job, files=files, events=hub, changes=notifier,
        deliveries=store.webhooks, instance_types={*catalog, *config.instance_prices},
    )
    if with_daemon:
        daemon = Daemon(
            config, store, executor, allocator, notifier, leadership,
            gpu_probe=gpu_probe(inventory.gpu_source), signer=signer,
            hooks=lambda stopper: attempt_hooks(config, store, inventory, clusters,
                                                volume_handlers.measure, stopper, signer,
                                                file_pool),
            reconciled=reconciled,
        )

    def scheduler() -> SchedulerView | None:
        if daemon is None:
            return None
        return SchedulerView(daemon.allocator.free(), len(daemon.runner.attempts))

    services = Services(
        config=config,
        jobs=jobs,
        files=JobFileService(files, store.jobs, store.telemetry, notifier, file_pool,
                             config.replica),
        telemetry=TelemetryService(store.jobs, store.telemetry, signer),
        accounts=AccountService(store.accounts, store.webhooks, store.clusters,
                                store.telemetry, prices, check_webhook, config.org_max_gpus),
        clusters=clusters,
        volumes=volumes,
        operations=OperationService(store.operations, store.clock),
        endpoints=EndpointService(store.endpoints, jobs),
        packages=PackageService(store.packages, jobs),
        signer=signer,
        prices=prices,
        server=ServerInfo(inventory.capacity, store.jobs.count_by_state, scheduler,
                          executor.enforcement,
                          lambda: "off" if leadership is None else
                          "leader" if leadership.held else "standby"),
        reads_inline=engines.reads_inline,
    )
    periodic = None
    if daemon is not None:
        periodic = Periodic(leads)
        periodic.every("retention", config.retention_interval_s, Retention(config, store).sweep)
        periodic.every("schedules", ScheduleRunner.INTERVAL_S, ScheduleRunner(
            store, jobs, clusters).tick)  # and idle Integrate.io clusters
    return Runtime(config, engines, store, notifier, inventory, executor, services, hub,
                   daemon, processor, periodic, new_key, file_pool)


def attempt_hooks(config: Config, store: SqlStore, inventory: Inventory,
                  clusters: ClusterService, measure_volumes: Measure,
                  stopper: Stopper, signer: Signer,
                  file_pool: ThreadPoolExecutor | None = None) -> list[AttemptHook]:
    """The daemon's plug-ins (``daemon/plugins/``), in the order they run, each given what it
    needs; ``stopper`` is the daemon's attempt runner (the daemon calls this when it is made),
    ``file_pool`` the threads for file work.
    """
    return [
        WorkspaceFetch(config, signer),  # a workspace another replica made, brought here
        OutputCollector(config, store, file_pool),  # scans and counts on the file pool
        # metrics, cost, budgets (stops the jobs of an owner over budget)
        ResourceSampler(config, store, stopper, gpu_stats(inventory.gpu_source)),
        TqdmWatcher(store),  # progress read off tqdm bars
        VolumeMounts(store, config.data_dir, measure_volumes),  # attached volumes, quota at end
        ClusterTeardown(clusters),  # release the cluster a job asked to tear down
    ]


async def fenced(fence: Fence | None, work: Awaitable[None]) -> None:
    """Run ``work`` (a task's body) with its writes fenced by ``fence``."""
    FENCE.set(fence)
    await work


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
    store.accounts.create_key(admin["id"], ids.hash_key(secret), secret[:10],
                              "bootstrap admin key")
    return None if config.bootstrap_admin_key else secret
