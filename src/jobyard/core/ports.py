"""What the core needs from the outside world: one Protocol per repository of the store, and
the small value types that cross the line.

Every method the core (and the daemon, its plug-ins, the operation processor) calls on the
store is declared here. The SQL implementation lives in ``jobyard.store`` (``store/sql.py``
composes one repository per Protocol); ``jobyard.store.memory`` implements them in memory for
tests of the core's rules. The core never imports either.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from jobyard.core.inputs import ListJobs
from jobyard.core.models import Job, JobEvent, Principal, Resources
from jobyard.core.states import JobState

if TYPE_CHECKING:  # the resource modules import this one for their services
    from jobyard.core.clusters import Cluster, ClusterState
    from jobyard.core.endpoints import Endpoint
    from jobyard.core.operations import Operation, OperationStatus, OperationType
    from jobyard.core.packages import Package, Schedule
    from jobyard.core.volumes import Volume


@dataclass(frozen=True, slots=True)
class Transition:
    """Move one job to ``to``; ``fields`` are set in the same write (e.g. exit_code)."""

    job_id: int
    to: JobState
    fields: dict[str, Any]
    event: dict[str, Any] | None = None  # extra data for the job_events row
    telemetry: dict[str, Any] | None = None  # merged into the job's telemetry, same write


@dataclass(frozen=True, slots=True)
class NewJob:
    job: Job  # id is ignored; the store assigns it
    idempotency: tuple[str, str] | None = None  # (key, fingerprint of the request)


@dataclass(frozen=True, slots=True)
class QueuedJob:
    """What the scheduler needs to know of a queued job (cheap to load in bulk)."""

    id: int
    resources: Resources
    priority: int
    next_retry_at: float | None
    cluster_id: str | None = None  # runs on one free instance of this cluster


@dataclass(frozen=True, slots=True)
class SampleWrite:
    """One job's part of a sampling round (see :meth:`TelemetryStore.record_samples`)."""

    job_id: int
    attempt: int
    ts: float
    point: dict[str, Any] | None  # the sample to store, or None (thinned out)
    patch: dict[str, Any]  # merged into the job's telemetry
    thin_to: int | None = None  # delete the attempt's points whose n is not a multiple


@dataclass(frozen=True, slots=True)
class Delivery:
    """One due outbox row, with what it takes to send it."""

    id: int
    job_id: int | None
    user_id: int
    event_type: str
    url: str
    payload: dict[str, Any]
    attempts: int
    secret: str | None


# (telemetry patch, column values, (event kind, event data) or None): what a telemetry change
# writes (see :meth:`JobStore.update_telemetry`).
TelemetryChange = tuple[dict[str, Any], dict[str, Any], tuple[str, dict[str, Any]] | None]
# Checks run on the locked, fresh row before an operation is recorded: raise to refuse; return
# column changes to make in the same transaction (or None).
ClusterCheck = Callable[["Cluster"], dict[str, Any] | None]
VolumeCheck = Callable[["Volume"], dict[str, Any] | None]


class JobStore(Protocol):
    """Jobs: create, read, move (through the transition table), delete."""

    def apply(self, transitions: Sequence[Transition]) -> list[Job | Exception]:
        """Apply several transitions in one transaction; a refused one yields its error."""

    def count_by_state(self) -> dict[str, int]:
        ...

    def create_job(self, new: NewJob) -> tuple[Job, bool]:
        """Insert a queued job and its first event; ``(existing, False)`` on a replayed key."""

    def delete_jobs(self, job_ids: list[int]) -> list[int]:
        """Delete these jobs if they are terminal; returns the ids deleted. Webhook deliveries
        still in the outbox keep their payload and lose only the link to the job."""

    def ended_before(self, cutoff: float, limit: int) -> list[Job]:
        """Terminal jobs that ended before ``cutoff``, oldest first."""

    def events(self, job_id: int, after_id: int = 0, limit: int = 500) -> list[JobEvent]:
        ...

    def finished_since(self, since: float) -> int:
        ...

    def get_job(self, ref: int | str) -> Job | None:
        ...

    def job_facts(self, jobs: Collection[Job]) -> dict[str, Any]:
        """What rendering ``jobs`` needs besides the rows: ``outputs`` (per job id, its current
        attempt's collected files with their row ids), ``clusters`` (per cluster uid: integer
        id and name) and ``users`` (per user id: username)."""

    def job_is_live(self, job_id: int | None) -> bool:
        """Whether job ``job_id`` exists and is queued or active (a schedule's last run)."""

    def job_page(self, org_id: int, offset: int, limit: int,
                 states: Collection[str] | None = None) -> tuple[list[Job], int]:
        """A page of the org's jobs (in ``states``), newest first, and how many match."""

    def jobs_in_states(self, states: Iterable[JobState], limit: int = 1000) -> list[Job]:
        """Jobs in these states; queued ones by priority (high first) then age."""

    def jobs_on_cluster(self, uid: str, states: list[str]) -> list[Job]:
        """The cluster's jobs in ``states`` (e.g. the active ones, at a release)."""

    def last_event_id(self, job_id: int) -> int:
        """The id of the job's newest event (0 if none)."""

    def list_jobs(self, org_id: int | None, query: ListJobs) -> list[Job]:
        ...

    def merge_telemetry(
        self,
        job_id: int,
        patch: dict[str, Any],
        event: str | None = None,
        fields: dict[str, Any] | None = None,
    ) -> Job:
        """Merge ``patch`` into an *active* job's telemetry (Conflict once it has ended).

        ``event`` names a job_events row to write with the patch as data; ``fields`` sets
        columns in the same write (e.g. the substate).
        """

    def queue_position(self, job: Job) -> int:
        """1-based place of a queued job among the queued jobs ahead of it."""

    def queued(self, limit: int) -> list[QueuedJob]:
        """The head of the queue: by priority (high first), then age."""

    def state_events(self, job_id: int) -> list[tuple[float, dict[str, Any]]]:
        """``(ts, data)`` of the job's state changes, in order (for cold-start phases)."""

    def update_fields(self, job_id: int, fields: dict[str, Any], event: str | None = None,
                      in_state: JobState | None = None) -> Job | None:
        """Set non-state fields (substate, runtime, ...); ``event`` names an event to record.
        With ``in_state``, only while the job is in that state (else None)."""

    def update_telemetry(
        self,
        ref: int | str,
        change: Callable[[Job], TelemetryChange | None],
    ) -> tuple[Job, TelemetryChange | None]:
        """Read-modify-write of one job's telemetry, in one write transaction.

        ``change`` gets the job (its row locked) and returns ``(patch, fields, event)`` — a
        telemetry patch merged at the top level, column values (e.g. ``substate``) and an
        optional ``(kind, data)`` for a ``job_events`` row — or None to write nothing. It may
        raise to refuse (e.g. Conflict once the job ended). Streams are woken only when an
        event was written: most reports change no event stream."""

    def workdirs_in_use(self, paths: list[str]) -> set[str]:
        """Those of ``paths`` that some job has as its working directory."""


class AccountStore(Protocol):
    """Who may call: orgs, users and their keys; what they may spend and claim."""

    def account_summary(self, user_id: int) -> dict[str, Any]:
        """What there is to know about a user: their row and org, their jobs by state, how
        many clusters (holding resources), volumes and SSH keys they own."""

    def add_ssh_key(self, user_id: int, org_id: int, name: str, key_type: str, public_key: str,
                    fingerprint: str) -> dict[str, Any]:
        """A new key of ``user_id``; 409 when that user already has it, or too many keys."""

    def api_key_info(self, key_id: int) -> dict[str, Any] | None:
        """Name and prefix of an API key (to tell the caller which key they use)."""

    def budgets(self, user_ids: Iterable[int], org_ids: Iterable[int]
                ) -> tuple[dict[int, float], dict[int, float]]:
        """The budgets set among these users and orgs: ``({user_id: b}, {org_id: b})``."""

    def create_key(self, user_id: int, key_hash: str, prefix: str, name: str) -> dict[str, Any]:
        ...

    def create_org(self, name: str) -> dict[str, Any]:
        ...

    def create_user(self, username: str, org: str, is_admin: bool = False) -> dict[str, Any]:
        ...

    def delete_ssh_key(self, uid: str) -> bool:
        """Forget a key; False when there was none."""

    def find_user(self, username: str) -> dict[str, Any] | None:
        ...

    def get_budget(self, scope: str, name: str) -> dict[str, Any] | None:
        """``{"id", "name", "org_id", "budget"}`` of a user or org; None if there is none."""

    def get_ssh_key(self, uid: str) -> dict[str, Any] | None:
        ...

    def is_empty(self) -> bool:
        """True when no user exists yet (first start)."""

    def list_keys(self, user_id: int | None) -> list[dict[str, Any]]:
        ...

    def list_orgs(self) -> list[dict[str, Any]]:
        ...

    def list_ssh_keys(self, org_id: int, user_id: int | None = None) -> list[dict[str, Any]]:
        """The keys of an org (or of one of its users), oldest first, with their owner."""

    def list_users(self) -> list[dict[str, Any]]:
        ...

    def org_by_ref(self, ref: str) -> tuple[int, str] | None:
        """An org by its name, or by its numeric id: ``(id, name)``."""

    def principal_for_key(self, key_hash: str) -> Principal | None:
        ...

    def revoke_key(self, key_id: int) -> dict[str, Any] | None:
        ...

    def set_budget(self, scope: str, name: str, budget: float | None) -> dict[str, Any] | None:
        """Set (or clear, with None) a user's or org's budget; None if there is no such one."""

    def set_org_max_gpus(self, org: str, max_gpus: int | None) -> None:
        ...

    def usernames(self, user_ids: Iterable[int]) -> dict[int, str]:
        ...


class ClusterStore(Protocol):
    """Clusters: claims, edits and releases (each with its operation), attachments, quotas."""

    def attach_volume(self, volume_id: int, cluster_uid: str) -> None:
        """Idempotent; 409 unless the cluster is ready."""

    def cluster_by_number(self, cluster_id: int) -> Cluster | None:
        """A cluster by its integer id (what Integrate.io clients use)."""

    def cluster_facts(self, uids: Collection[str]) -> dict[str, dict[str, Any]]:
        """Per cluster uid: ``open`` (the status of its open request, or None), ``claimed_at``
        and ``released_at`` (when its claim / release completed), ``live_jobs`` (queued or
        active jobs on it) and ``last_job_end`` (when its last job ended)."""

    def cluster_operation(
        self, who: Principal, cluster: Cluster, kind: OperationType, params: dict[str, Any],
        check: ClusterCheck, message: str, gpus_after: int | None = None,
        default_quota: int | None = None,
    ) -> Operation:
        """Record ``kind`` on ``cluster`` once ``check`` passed on its locked row (one open
        operation per cluster: 409 otherwise); with ``gpus_after``, within the org's quota."""

    def cluster_page(self, org_id: int, offset: int, limit: int,
                     states: Collection[str] | None = None) -> tuple[list[Cluster], int]:
        """A page of the org's clusters (in ``states``), newest first, and how many match."""

    def create_cluster(
        self, who: Principal, name: str, instance_type: str, count: int, gpus_each: int,
        default_quota: int | None,
    ) -> tuple[Operation, Cluster]:
        """A new ``pending`` cluster and its CLUSTER_CLAIM operation, within the org's quota."""

    def detach_volume(self, volume_id: int, cluster_uid: str) -> None:
        ...

    def end_cluster(self, uid: str, state: ClusterState, message: str) -> None:
        """``released`` or ``failed``: no reservation, no attachment left (one transaction)."""

    def get_cluster(self, uid: str) -> Cluster | None:
        ...

    def list_clusters(self, org_id: int | None, holding_only: bool = False) -> list[Cluster]:
        ...

    def org_gpu_usage(self, org: str) -> tuple[int, int | None, int]:
        """(org id, its own max_gpus or None, GPUs its clusters hold or will hold)."""

    def set_protection(self, uid: str, on: bool, states: Collection[str]) -> str | None:
        """Deletion protection of cluster ``uid`` if it is in one of ``states``; returns its
        state (None: no such cluster)."""

    def update_cluster(self, uid: str, **values: Any) -> None:
        ...


class VolumeStore(Protocol):
    """Volumes: creates, edits and destroys (each with its operation), measured usage."""

    def create_volume(self, who: Principal, name: str, size_bytes: int) -> tuple[Operation, Volume]:
        """A new volume (``creating``) and its STORAGE_CREATE operation; 409 on a taken name."""

    def delete_volume(self, uid: str) -> None:
        """Forget a volume; 409 while it is attached."""

    def get_volume(self, uid: str) -> Volume | None:
        ...

    def list_volumes(self, org_id: int | None) -> list[Volume]:
        ...

    def rename_volume(self, uid: str, name: str, size_bytes: int | None) -> None:
        """Apply an edit; 409 when another volume of the org took ``name`` meanwhile."""

    def set_protection(self, uid: str, on: bool, states: Collection[str]) -> str | None:
        """Deletion protection of volume ``uid`` if it is in one of ``states``; returns its
        state (None: no such volume)."""

    def set_volume_usage(self, usage: dict[str, int], at: float) -> None:
        ...

    def update_volume(self, uid: str, **values: Any) -> None:
        ...

    def volume_operation(
        self, who: Principal, volume: Volume, kind: OperationType, params: dict[str, Any],
        check: VolumeCheck, message: str,
    ) -> Operation:
        """Record ``kind`` on ``volume`` after ``check`` passed on its locked, fresh row (one
        open operation per volume at a time: 409 otherwise)."""


class OperationStore(Protocol):
    """Operations: recorded with what they act on, moved only along ``core.operations.MOVES``."""

    def due_operations(
        self, now: float, limit: int, skip: Collection[int] = (), processing: bool = False
    ) -> list[Operation]:
        """PENDING and due RETRYING operations, oldest first; with ``processing``, also those
        left PROCESSING (by a leader that crashed: call it only when leadership starts)."""

    def get_operation(self, uid: str) -> Operation | None:
        ...

    def list_operations(self, org_id: int | None, limit: int) -> list[Operation]:
        ...

    def move_operation(self, req: Operation, status: OperationStatus, **values: Any) -> Operation:
        """Move ``req`` to ``status`` (checked against ``core.operations.MOVES``)."""


class PackageStore(Protocol):
    """Packages of an org and the schedules that run them."""

    def advance_schedule(self, schedule_id: int, due: float, next_run_at: float,
                         job: Job | None, now: float) -> bool:
        """Move a schedule past its run due at ``due`` (a compare-and-set on next_run_at: False
        when someone moved it already); with ``job``, record it as the last run."""

    def create_package(self, p: Package) -> Package:
        """Insert ``p`` (its id is assigned); 409 when the org has a package of that name."""

    def create_schedule(self, s: Schedule) -> Schedule:
        ...

    def delete_package(self, package_id: int) -> None:
        """409 while a schedule runs it."""

    def delete_schedule(self, schedule_id: int) -> bool:
        ...

    def due_schedules(self, now: float, limit: int = 100) -> list[tuple[Schedule, str]]:
        """Enabled schedules whose next run is due, oldest due first, with the owner's
        username."""

    def get_package(self, package_id: int) -> Package | None:
        ...

    def get_schedule(self, schedule_id: int) -> Schedule | None:
        ...

    def list_packages(self, org_id: int, offset: int, limit: int) -> tuple[list[Package], int]:
        """A page of the org's packages, newest first, and how many it has."""

    def list_schedules(self, org_id: int, offset: int, limit: int
                       ) -> tuple[list[Schedule], int]:
        """A page of the org's schedules, newest first, and how many it has."""

    def package_by_name(self, org_id: int, name: str) -> Package | None:
        ...

    def refresh_schedule_runs(self) -> int:
        """Bring ``last_run_status`` of schedules whose last run had not ended up to date with
        their job (a job deleted meanwhile keeps the last status known). Returns how many
        changed."""

    def set_schedule_status(self, schedule_id: int, status: str, next_run_at: float | None
                            ) -> None:
        ...


class EndpointStore(Protocol):
    """Endpoints of an org (their ids are unique server-wide)."""

    def create_endpoint(self, row: dict[str, Any]) -> Endpoint:
        """Insert an endpoint; 409 when its ``uid`` is taken."""

    def delete_endpoint(self, uid: str) -> bool:
        ...

    def get_endpoint(self, uid: str) -> Endpoint | None:
        ...

    def list_endpoints(self, org_id: int | None, limit: int = 500) -> list[Endpoint]:
        """An org's endpoints (every org's with None), oldest first."""


class TelemetryStore(Protocol):
    """What running jobs are measured to use and leave behind, and what they cost."""

    def list_outputs(self, job_id: int, attempt: int | None = None) -> list[dict[str, Any]]:
        ...

    def metric_points(self, job_id: int, attempt: int) -> int:
        ...

    def metric_series(self, job_id: int, attempt: int) -> list[tuple[float, dict[str, Any]]]:
        """``(ts, sample)`` of one attempt, oldest first."""

    def purge_metrics(self, ended_before: float) -> int:
        """Delete the series of jobs that ended before ``ended_before``."""

    def record_outputs(self, job_id: int, attempt: int, files: list[dict[str, Any]]) -> None:
        """Replace the attempt's output list (collecting again is idempotent)."""

    def record_samples(self, writes: Sequence[SampleWrite]) -> dict[int, int | None]:
        """Store one sampling round. For each job still active and on the same attempt: thin
        its series to ``thin_to`` (delete points whose ``n`` is not a multiple), add ``point``,
        merge ``patch`` into its telemetry. Returns, per job written, the number of points its
        attempt has when it was thinned (else None).

        SQLite writes the round in one transaction (one writer: nothing to deadlock with);
        PostgreSQL one per job, so a round never holds two row locks that a daemon batch might
        take in the other order."""

    def settled_spend(self, user_id: int | None = None, org_id: int | None = None) -> float:
        """The total cost of a user's (or an org's) jobs that have ended."""

    def unsettled_jobs(self, user_id: int | None = None, org_id: int | None = None) -> list[Job]:
        """A user's (or an org's) jobs that have not ended (their cost may still grow)."""


class KvStore(Protocol):
    """JSON values by key."""

    def get_kv(self, key: str) -> Any:
        ...

    def kv_many(self, keys: Collection[str]) -> dict[str, Any]:
        """Several ``kv`` values at once (absent keys are left out)."""

    def kv_prefixed(self, prefix: str) -> dict[str, Any]:
        """Every ``kv`` value whose key starts with ``prefix``."""

    def put_kv(self, key: str, value: Any) -> None:
        ...


class WebhookStore(Protocol):
    """The outbox and what it sends with: deliveries, users' defaults and secrets."""

    def add_outbox_listener(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` after a commit that wrote outbox rows (it must be thread-safe)."""

    def due_deliveries(
        self, now: float, limit: int = 100, skip: Collection[int] = ()
    ) -> list[Delivery]:
        """Pending deliveries whose time has come, oldest due first (``skip``: in flight)."""

    def job_deliveries(self, job_id: int, limit: int = 200) -> list[dict[str, Any]]:
        """A job's delivery log, oldest first."""

    def user_deliveries(self, user_id: int, limit: int = 100) -> list[dict[str, Any]]:
        """A user's deliveries (to their webhooks), newest first."""

    def purge_deliveries(self, cutoff: float) -> int:
        """Delete deliveries that are done and were made before ``cutoff``."""

    def record_attempt(
        self, delivery_id: int, entry: dict[str, Any], delivered: bool, retry_at: float | None
    ) -> None:
        """Log one attempt; ``delivered``, else pending until ``retry_at`` (None: give up)."""

    def rotate_webhook_secret(self, user_id: int) -> dict[str, Any]:
        """A new signing secret; deliveries from now on are signed with it."""

    def set_user_webhook(self, user_id: int, url: str | None, events: list[str]) -> dict[str, Any]:
        """Set (or, with ``url=None``, clear) the user's default webhook; keeps the secret."""

    def user_webhook(self, user_id: int) -> dict[str, Any]:
        """The user's ``{"url", "events", "secret"}``; makes the secret on first use."""



class EventFeed(Protocol):
    """Live job events (``events/hub.py``: one store reader per followed job)."""

    def follow(self, job_id: int, after: int = 0) -> AsyncIterator[JobEvent]:
        """The job's events after ``after``, then each new one, until it has ended."""


class Store(Protocol):
    """The whole store: one repository per resource (read-only members), and the clock its
    writes are stamped with."""

    @property
    def clock(self) -> Callable[[], float]: ...

    @property
    def jobs(self) -> JobStore: ...

    @property
    def accounts(self) -> AccountStore: ...

    @property
    def clusters(self) -> ClusterStore: ...

    @property
    def volumes(self) -> VolumeStore: ...

    @property
    def operations(self) -> OperationStore: ...

    @property
    def packages(self) -> PackageStore: ...

    @property
    def endpoints(self) -> EndpointStore: ...

    @property
    def telemetry(self) -> TelemetryStore: ...

    @property
    def kv(self) -> KvStore: ...

    @property
    def webhooks(self) -> WebhookStore: ...
