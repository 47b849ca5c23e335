"""Accounts: who may call (orgs, users, API keys), their webhook settings, SSH keys, budgets
and org GPU quotas, with the rules on who may see and change what.

Admins manage orgs, users, other users' keys, budgets and quotas; everyone reads their own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from jobyard import ids
from jobyard.core.cost import Prices, spend
from jobyard.core.inputs import (
    AddSshKey,
    CreateKey,
    CreateUser,
    SetBudget,
    SetQuota,
    SetWebhook,
)
from jobyard.core.models import Principal
from jobyard.core.ports import AccountStore, ClusterStore, TelemetryStore, WebhookStore
from jobyard.errors import BadRequest, Forbidden, NotFound, Unauthorized, ValidationFailed

# OpenSSH public key types a user may register (DSA keys are no longer accepted by OpenSSH).
KEY_TYPES = frozenset({
    "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521", "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
})
Scope = Literal["user", "org"]


@dataclass(frozen=True, slots=True)
class SshKey:
    uid: str
    name: str
    key_type: str
    fingerprint: str


def require_admin(who: Principal) -> Principal:
    """The one admin rule: 403 unless the caller holds an admin key."""
    if not who.is_admin:
        raise Forbidden("this needs an admin API key")
    return who


def parse_public_key(text: str) -> tuple[str, str, str, str]:
    """An OpenSSH one-line public key → (type, normalised key, comment, SHA256 fingerprint as
    ``ssh-keygen -l`` prints it); 400 with what is wrong otherwise."""
    text = text.strip()
    if "PRIVATE KEY" in text:
        raise BadRequest("this is a private key: give the public key (the .pub file)")
    if "\n" in text or "\r" in text:
        raise BadRequest("give exactly one public key (one line, as in a .pub file)")
    parts = text.split(None, 2)
    if len(parts) < 2 or parts[0] not in KEY_TYPES:
        raise BadRequest("not an OpenSSH public key: expected '<type> <base64> [comment]' "
                         f"with a type among {', '.join(sorted(KEY_TYPES))}")
    kind, data = parts[0], parts[1]
    try:
        blob = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("not an OpenSSH public key: its key data is not base64") from None
    n = int.from_bytes(blob[:4], "big")
    if len(blob) <= 4 + n or blob[4:4 + n] != kind.encode():
        raise BadRequest(f"not an OpenSSH public key: its key data is not a {kind} key")
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    comment = parts[2].strip() if len(parts) > 2 else ""
    return kind, f"{kind} {data}" + (f" {comment}" if comment else ""), comment, \
        f"SHA256:{digest}"


def _printable(text: str) -> str:
    return "".join(ch if ch.isprintable() else " " for ch in text).strip()


class AccountService:
    def __init__(self, accounts: AccountStore, webhooks: WebhookStore, clusters: ClusterStore,
                 telemetry: TelemetryStore, prices: Prices,
                 check_webhook: Callable[[str], str | None],
                 default_quota: int | None = None, clock: Callable[[], float] = time.time):
        self._accounts = accounts
        self._webhooks = webhooks
        self._clusters = clusters
        self._telemetry = telemetry
        self._prices = prices
        self._check_webhook = check_webhook
        self._default_quota = default_quota
        self._clock = clock

    # who is calling ----------------------------------------------------------------------------
    def authenticate(self, api_key: str | None) -> Principal:
        """The owner of ``api_key`` (looked up by its hash: a revoked key fails at once), or
        401."""
        if not api_key:
            raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
        return self.by_key_hash(ids.hash_key(api_key))

    def by_key_hash(self, key_hash: str) -> Principal:
        """The owner of the key with this hash (a dashboard session keeps the hash, never the
        key), or 401 once it is revoked."""
        who = self._accounts.principal_for_key(key_hash)
        if who is None:
            raise Unauthorized("unknown or revoked API key")
        return who

    def summary(self, who: Principal) -> dict[str, Any]:
        """The caller's account: user and org, jobs by state, clusters, volumes, SSH keys, and
        the key in use (``api_key``: name and prefix)."""
        summary = self._accounts.account_summary(who.user_id)
        key = self._accounts.api_key_info(who.key_id) if who.key_id else None
        return {**summary, "api_key": key}

    def org_for_account(self, ref: str) -> tuple[int, str] | None:
        """An org by its name or numeric id (an Integrate.io account id): ``(id, name)``."""
        return self._accounts.org_by_ref(ref)

    def usernames(self, user_ids: Iterable[int]) -> dict[int, str]:
        return self._accounts.usernames(user_ids)

    # orgs, users, keys -------------------------------------------------------------------------
    def create_org(self, who: Principal, name: str) -> dict[str, Any]:
        require_admin(who)
        return self._accounts.create_org(name)

    def list_orgs(self, who: Principal) -> list[dict[str, Any]]:
        require_admin(who)
        return self._accounts.list_orgs()

    def create_user(self, who: Principal, new: CreateUser) -> dict[str, Any]:
        require_admin(who)
        return self._accounts.create_user(new.username, new.org, new.is_admin)

    def list_users(self, who: Principal) -> list[dict[str, Any]]:
        require_admin(who)
        return self._accounts.list_users()

    def create_key(self, who: Principal, new: CreateKey) -> dict[str, Any]:
        """A new key (its secret, ``key``, is shown this once; only its hash is kept)."""
        user_id = who.user_id
        if new.username and new.username != who.username:
            if not who.is_admin:
                raise Forbidden("only an admin can create keys for another user")
            user = self._accounts.find_user(new.username)
            if user is None:
                raise ValidationFailed(f"user '{new.username}' does not exist",
                                       {"loc": ["body", "username"]})
            user_id = user["id"]
        secret = ids.api_key()
        row = self._accounts.create_key(user_id, ids.hash_key(secret), secret[:10], new.name)
        return {**row, "key": secret}

    def list_keys(self, who: Principal, username: str | None = None) -> list[dict[str, Any]]:
        """The caller's keys; an admin's: everyone's, or one user's."""
        user_id: int | None = who.user_id
        if who.is_admin:
            user_id = None
            if username:
                user = self._accounts.find_user(username)
                if user is None:
                    raise NotFound(f"user '{username}' not found")
                user_id = user["id"]
        return self._accounts.list_keys(user_id)

    def revoke_key(self, who: Principal, key_id: int) -> dict[str, Any]:
        """Revoke one of the caller's keys (an admin: anyone's); 404 for any other."""
        mine = {k["id"] for k in self._accounts.list_keys(None if who.is_admin else who.user_id)}
        if key_id not in mine:
            raise NotFound(f"key {key_id} not found")
        return self._accounts.revoke_key(key_id) or {}

    # the caller's default webhook ------------------------------------------------------------
    def webhook(self, who: Principal) -> dict[str, Any]:
        """``{"url", "events", "secret"}`` (the secret is made on first use)."""
        return self._webhooks.user_webhook(who.user_id)

    def deliveries(self, who: Principal, limit: int = 100) -> list[dict[str, Any]]:
        """The caller's webhook deliveries (any job's), newest first."""
        return self._webhooks.user_deliveries(who.user_id, limit)

    def set_webhook(self, who: Principal, change: SetWebhook) -> dict[str, Any]:
        """Set (or, with ``url=None``, remove) the default webhook; the secret stays."""
        if change.url is not None:
            problem = self._check_webhook(change.url)
            if problem:
                raise ValidationFailed(problem, {"loc": ["body", "url"], "type": "value_error"})
        events = list(change.events) if change.url else []
        return self._webhooks.set_user_webhook(who.user_id, change.url, events)

    def rotate_webhook_secret(self, who: Principal) -> dict[str, Any]:
        return self._webhooks.rotate_webhook_secret(who.user_id)

    # SSH keys --------------------------------------------------------------------------------
    def add_ssh_key(self, who: Principal, new: AddSshKey) -> SshKey:
        """Register a public key of the caller (409 when they have it already)."""
        kind, key, comment, fingerprint = parse_public_key(new.public_key)
        name = _printable(new.name or comment)[:100] or kind
        row = self._accounts.add_ssh_key(who.user_id, who.org_id, name, kind, key, fingerprint)
        return SshKey(row["uid"], name, kind, fingerprint)

    def ssh_keys(self, who: Principal, whole_org: bool = False) -> list[dict[str, Any]]:
        """The caller's keys, or with ``whole_org`` their org's (with each owner)."""
        return self._accounts.list_ssh_keys(who.org_id, None if whole_org else who.user_id)

    def remove_ssh_key(self, who: Principal, uid: str) -> dict[str, Any]:
        """404 for a key of another org, 403 for another user's (unless an admin)."""
        key = self._accounts.get_ssh_key(uid)
        if key is None or not who.sees(key["org_id"]):
            raise NotFound(f"SSH key {uid} not found")
        if key["user_id"] != who.user_id and not who.is_admin:
            raise Forbidden(f"SSH key {uid} belongs to another user; only they can remove it")
        if not self._accounts.delete_ssh_key(uid):
            raise NotFound(f"SSH key {uid} not found")
        return key

    # budgets ---------------------------------------------------------------------------------
    def budget(self, who: Principal, scope: Scope, name: str) -> dict[str, Any]:
        """A user's or org's budget and spend; 404 unless it is the caller's (or an admin)."""
        row = self._accounts.get_budget(scope, name)
        own = who.user_id if scope == "user" else who.org_id
        if row is None or not (who.is_admin or row["id"] == own):
            raise NotFound(f"{scope} '{name}' not found")
        return self._budget_view(scope, name, row)

    def set_budget(self, who: Principal, change: SetBudget) -> dict[str, Any]:
        """Set (or clear, with None) a budget (admins only)."""
        require_admin(who)
        row = self._accounts.set_budget(change.scope, change.name, change.budget)
        if row is None:
            raise NotFound(f"{change.scope} '{change.name}' not found")
        return self._budget_view(change.scope, change.name, row)

    def _budget_view(self, scope: Scope, name: str, row: dict[str, Any]) -> dict[str, Any]:
        """The budget, what was spent (ended jobs' totals plus what active jobs accrued), and
        what is left."""
        owner = {"user_id": row["id"]} if scope == "user" else {"org_id": row["id"]}
        spent = round(spend(self._telemetry.settled_spend(**owner),
                            self._telemetry.unsettled_jobs(**owner), self._clock(),
                            self._prices), 6)
        budget = row["budget"]
        return {
            "scope": scope, "name": name, "budget": budget, "spent": spent,
            "remaining": None if budget is None else round(budget - spent, 6),
            "currency": self._prices.currency,
        }

    # org GPU quotas --------------------------------------------------------------------------
    def quota(self, who: Principal, org: str) -> dict[str, Any]:
        """An org's GPU quota for clusters and what its clusters hold; 404 unless it is the
        caller's org (or an admin)."""
        org_id, own, used = self._clusters.org_gpu_usage(org)
        if not who.sees(org_id):
            raise NotFound(f"org '{org}' not found")
        limit = own if own is not None else self._default_quota
        return {"org": org, "max_gpus": limit, "claimed_gpus": used}

    def set_quota(self, who: Principal, change: SetQuota) -> dict[str, Any]:
        """Set an org's GPU quota (None: the server default); admins only."""
        require_admin(who)
        self._accounts.set_org_max_gpus(change.org, change.max_gpus)
        return self.quota(who, change.org)
