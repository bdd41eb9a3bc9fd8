"""The DR state: one small JSON object per environment that says which site is active, the fencing epoch, which
run holds the state (only it may act), the operation that run is carrying out step by step, and the history of
finished transitions.

Two halves, so that a property test can drive the decisions without a server:

- `DrState` is a frozen value with pure transitions (`acquire`, `step_started`, `step_done`, `fence_pending`,
  `fence_confirmed`, `set_active`, `release`, `force_release`). Each returns a new state, or the same state when
  the change is already made (a retry of the same run resumes and changes nothing twice), or raises
  `StateHeldError` when the caller is not the run that holds the state. Times are passed in: the store hands in
  the storage server's clock, never this worker's.
- `DrStateStore` keeps it in Azure Blob (`<location>/<environment>.json`) and changes it only by compare-and-set:
  read (content + ETag) -> transition -> upload with If-Match (If-None-Match: * for the first write). A writer
  that read a version someone else has replaced since gets `StateConflictError` and its change is not written:
  an Airflow run and a `drctl` run can never both act on the same state.

`updated_at` is the blob's Last-Modified as the storage server set it on the write: any time written into the
body before the upload could only come from this worker's clock, so the body does not hold it, and every read
fills it in from the blob's properties.
"""

from __future__ import annotations

import email.utils
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import BlobClient, BlobServiceClient, ContentSettings

from multicloud_dr.backup.layout import StorageUrl
from multicloud_dr.config import SITES, Site
from multicloud_dr.connections import Endpoint
from multicloud_dr.exceptions import ConfigError, DrError, InputError, StateConflictError

FORMAT = "multicloud-dr/dr-state"
FORMAT_VERSION = 1
HISTORY_LIMIT = 100        # finished transitions kept; older ones drop off (the reports keep the detail)

Kind = Literal["failover", "failback", "drill"]
Mode = Literal["planned", "emergency", "drill"]
FenceStatus = Literal["none", "pending", "confirmed"]
StepStatus = Literal["running", "done", "failed"]
Outcome = Literal["succeeded", "failed", "cancelled"]

KINDS: tuple[str, ...] = get_args(Kind)
MODES: tuple[str, ...] = get_args(Mode)
FENCE_STATUSES: tuple[str, ...] = get_args(FenceStatus)
STEP_STATUSES: tuple[str, ...] = get_args(StepStatus)
OUTCOMES: tuple[str, ...] = get_args(Outcome)
FORCE_RELEASED = "force_released"

_ENVIRONMENT = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_STEP_NAME = re.compile(r"[A-Za-z0-9_.:/-]{1,100}")


class StateHeldError(DrError):
    """The DR state is held by another run (or by none, where a holder is needed): this run must not act."""


# --- the value ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fencing:
    """The site that is fenced (its database read-only, its app account locked), or must be as soon as it is
    reachable again (`pending`: it was unreachable when the failover fenced)."""

    site: Site | None = None
    status: FenceStatus = "none"
    at: datetime | None = None


@dataclass(frozen=True)
class Holder:
    run_id: str           # an Airflow run id, or drctl's own
    started_at: datetime
    by: str               # who: "airflow:<dag_id>", "drctl:<user>"


@dataclass(frozen=True)
class Step:
    name: str
    status: StepStatus
    started_at: datetime | None = None
    ended_at: datetime | None = None
    detail: Any = None    # JSON-able: what the step did (ids, counts, the epoch); shown in the report


@dataclass(frozen=True)
class Operation:
    kind: Kind
    target_site: Site
    mode: Mode
    from_site: Site                 # the active site when the operation began
    steps: tuple[Step, ...] = ()    # in the order they started

    def step(self, name: str) -> Step | None:
        return next((s for s in self.steps if s.name == name), None)

    def with_step(self, new: Step) -> Operation:
        if self.step(new.name) is None:
            return replace(self, steps=(*self.steps, new))
        return replace(self, steps=tuple(new if s.name == new.name else s for s in self.steps))


@dataclass(frozen=True)
class HistoryEntry:
    """A finished (or force-released) operation."""

    kind: Kind
    mode: Mode
    run_id: str
    by: str
    target_site: Site
    from_site: Site
    to_site: Site                   # the active site when it ended
    outcome: str                    # succeeded | failed | cancelled | force_released
    started_at: datetime
    ended_at: datetime
    fencing_epoch: int
    steps: tuple[tuple[str, str], ...] = ()   # (name, status): the detail is in the operation's report
    released_by: str | None = None            # force_release only
    reason: str | None = None


@dataclass(frozen=True)
class DrState:
    environment: str
    active_site: Site = "primary"
    fencing_epoch: int = 0
    fencing: Fencing = field(default_factory=Fencing)
    holder: Holder | None = None
    operation: Operation | None = None
    history: tuple[HistoryEntry, ...] = ()
    updated_at: datetime | None = field(default=None, compare=False)   # the blob's Last-Modified (server time)

    @classmethod
    def new(cls, environment: str, active_site: str = "primary") -> DrState:
        return cls(environment=_environment(environment), active_site=_site(active_site, "active_site"))

    # -- who may act --

    def is_held_by(self, run_id: str) -> bool:
        return self.holder is not None and self.holder.run_id == run_id

    def finished(self, run_id: str) -> HistoryEntry | None:
        """The newest history entry of `run_id`: it released the state (or was force-released)."""
        return next((e for e in reversed(self.history) if e.run_id == run_id), None)

    def _require_holder(self, run_id: str, action: str) -> Operation:
        if self.holder is None or self.operation is None:
            raise StateHeldError(f"run {run_id!r} cannot {action}: no run holds the DR state of {self.environment} "
                                 f"(released or force-released meanwhile); re-read the state and start the "
                                 f"operation again")
        if self.holder.run_id != run_id:
            raise StateHeldError(f"run {run_id!r} cannot {action}: the DR state of {self.environment} is held by "
                                 f"run {self.holder.run_id!r} ({self.holder.by}, since "
                                 f"{_iso(self.holder.started_at)}); stop without acting, or if that run is dead "
                                 f"use force_release (drctl) with a reason")
        return self.operation

    # -- transitions (pure) --

    def acquire(self, run_id: str, by: str, kind: str, target_site: str, mode: str, *, at: datetime) -> DrState:
        """Take the state for an operation. The same run again (a retry) resumes: nothing changes, provided it
        asks for the same operation. A run that finished already acquires again (clearing a failed Airflow run
        retries it): ask `finished(run_id)` first where a finished run must stay finished."""
        run_id, by = _text(run_id, "run_id"), _text(by, "by")
        kind, mode = _choice(kind, KINDS, "kind"), _choice(mode, MODES, "mode")
        target_site = _site(target_site, "target_site")
        if self.holder is not None and self.operation is not None:
            if self.holder.run_id != run_id:
                self._require_holder(run_id, f"start a {kind}")
            op = self.operation
            if (op.kind, op.target_site, op.mode) != (kind, target_site, mode):
                raise InputError(f"run {run_id!r} already holds the DR state for a {op.mode} {op.kind} to "
                                 f"{op.target_site}, not a {mode} {kind} to {target_site}: resume it with the "
                                 f"same parameters, or release it first")
            return self
        if (kind == "drill") != (mode == "drill"):
            raise InputError(f"a {kind} cannot run in mode {mode!r}: drills run in mode 'drill', failovers and "
                             f"failbacks in 'planned' or 'emergency'")
        return replace(self, holder=Holder(run_id, _utc(at), by),
                       operation=Operation(kind, target_site, mode, from_site=self.active_site))

    def step_started(self, run_id: str, name: str, *, at: datetime) -> DrState:
        """Mark a step running. A step already done stays done (the retry skips it); a failed one runs again."""
        op = self._require_holder(run_id, f"start step {name!r}")
        name = _step_name(name)
        current = op.step(name)
        if current is not None and current.status in ("done", "running"):
            return self
        return replace(self, operation=op.with_step(Step(name, "running", started_at=_utc(at))))

    def step_done(self, run_id: str, name: str, detail: Any = None, *, at: datetime) -> DrState:
        """Mark a step done with what it did. Done already: unchanged (its first detail and end time stay)."""
        return self._end_step(run_id, name, "done", detail, at)

    def step_failed(self, run_id: str, name: str, detail: Any = None, *, at: datetime) -> DrState:
        """Mark a step failed (a retry may start it again). A step already done stays done."""
        return self._end_step(run_id, name, "failed", detail, at)

    def _end_step(self, run_id: str, name: str, status: StepStatus, detail: Any, at: datetime) -> DrState:
        op = self._require_holder(run_id, f"end step {name!r}")
        name = _step_name(name)
        _json_able(detail, f"the detail of step {name!r}")
        current = op.step(name)
        if current is not None and current.status == "done":
            return self
        at = _utc(at)
        started = current.started_at if current is not None and current.started_at else at
        return replace(self, operation=op.with_step(Step(name, status, started, at, detail)))

    def fence_pending(self, site: str, run_id: str, *, at: datetime) -> DrState:
        """The holder could not reach `site` to fence it: record that it must be fenced as soon as it is seen
        again. Already pending or confirmed for that site: unchanged."""
        op = self._require_holder(run_id, f"fence {site}")
        site = self._fenceable(site, op)
        if self.fencing.site == site and self.fencing.status in ("pending", "confirmed"):
            return self
        return replace(self, fencing=Fencing(site, "pending", _utc(at)))

    def fence_confirmed(self, site: str, run_id: str | None, *, at: datetime) -> DrState:
        """`site` is fenced now: the epoch moves on, exactly once per fencing (confirmed again: unchanged).

        The holder may confirm any fencing of the site its operation leaves. Any other caller (run_id None, or
        not the holder: replication_health finding a returning old primary) may only complete a fencing that is
        pending for exactly that site: fencing a returning primary must not wait for a lock."""
        site = _site(site, "site")
        if self.fencing.site == site and self.fencing.status == "confirmed":
            return self
        pending_here = self.fencing.site == site and self.fencing.status == "pending"
        if run_id is None or not self.is_held_by(run_id):
            if not pending_here:
                if run_id is None:
                    raise StateHeldError(f"no fencing of {site} is pending in the DR state of {self.environment}: "
                                         f"only the run that holds the state may fence a site")
                self._require_holder(run_id, f"fence {site}")
        else:
            self._fenceable(site, self.operation)  # type: ignore[arg-type]
        return replace(self, fencing=Fencing(site, "confirmed", _utc(at)), fencing_epoch=self.fencing_epoch + 1)

    def unfence(self, site: str, run_id: str, *, at: datetime) -> DrState:
        """The holder lifted the fencing of `site`: only of the active site (an aborted failover gives the primary
        back its writes), never of the other one, which would make two writable databases."""
        self._require_holder(run_id, f"unfence {site}")
        site = _site(site, "site")
        if self.fencing.site != site or self.fencing.status == "none":
            return self
        if site != self.active_site:
            raise InputError(f"{site} is not the active site of {self.environment} ({self.active_site} is): "
                             f"unfencing it would make two writable databases; make it active first")
        return replace(self, fencing=Fencing(None, "none", _utc(at)))

    def _fenceable(self, site: str, op: Operation) -> Site:
        site = _site(site, "site")
        if self.fencing.status == "pending" and self.fencing.site != site:
            raise InputError(f"the fencing of {self.fencing.site} is still pending (it was unreachable): confirm "
                             f"it (fence {self.fencing.site} once it is reachable) before fencing {site}")
        if site == op.target_site:
            raise InputError(f"the {op.kind} moves {self.environment} to {site}: fencing {site} would leave no "
                             f"writable database; fence the site it leaves ({_other(site)})")
        return site

    def set_active(self, site: str, run_id: str, *, at: datetime) -> DrState:
        """The holder's operation made `site` the active one. Refused in a drill (its targets are scratch ones)
        and unless the site left behind is fenced or pending fencing: at most one writable database."""
        op = self._require_holder(run_id, f"make {site} active")
        site = _site(site, "site")
        if site == self.active_site:
            return self
        if op.kind == "drill":
            raise InputError("a drill never changes the active site: it runs against scratch targets")
        if site != op.target_site:
            raise InputError(f"the {op.kind} held by run {run_id!r} moves to {op.target_site}, not {site}")
        left = self.active_site
        if self.fencing.site != left or self.fencing.status == "none":
            raise InputError(f"{left} is not fenced (nor pending fencing) in the DR state of {self.environment}: "
                             f"fence it first, so that two sites never take writes at once")
        return replace(self, active_site=site)

    def release(self, run_id: str, outcome: str, *, at: datetime) -> DrState:
        """End the holder's operation: it goes to the history and the state is free. Released already (a retry
        of the release): unchanged."""
        outcome = _choice(outcome, OUTCOMES, "outcome")
        if not self.is_held_by(run_id) and self.finished(run_id) is not None:
            return self
        self._require_holder(run_id, "release the DR state")
        return self._ended(outcome, _utc(at))

    def force_release(self, by: str, reason: str, *, at: datetime) -> DrState:
        """Free a state whose holder died (recorded in the history with who and why). Nothing held: unchanged."""
        by, reason = _text(by, "by"), _text(reason, "reason")
        if self.holder is None:
            return self
        return self._ended(FORCE_RELEASED, _utc(at), released_by=by, reason=reason)

    def _ended(self, outcome: str, at: datetime, released_by: str | None = None,
               reason: str | None = None) -> DrState:
        holder, op = self.holder, self.operation
        assert holder is not None and op is not None
        entry = HistoryEntry(kind=op.kind, mode=op.mode, run_id=holder.run_id, by=holder.by,
                             target_site=op.target_site, from_site=op.from_site, to_site=self.active_site,
                             outcome=outcome, started_at=holder.started_at, ended_at=at,
                             fencing_epoch=self.fencing_epoch, steps=tuple((s.name, s.status) for s in op.steps),
                             released_by=released_by, reason=reason)
        return replace(self, holder=None, operation=None, history=(*self.history, entry)[-HISTORY_LIMIT:])

    # -- JSON --

    def to_dict(self) -> dict[str, Any]:
        """The stored form, plus `updated_at` (for display: the store never writes it into the body)."""
        f, h, op = self.fencing, self.holder, self.operation
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "environment": self.environment,
            "active_site": self.active_site,
            "fencing_epoch": self.fencing_epoch,
            "fencing": {"site": f.site, "status": f.status, "at": _iso(f.at)},
            "holder": None if h is None else {"run_id": h.run_id, "started_at": _iso(h.started_at), "by": h.by},
            "operation": None if op is None else {
                "kind": op.kind, "target_site": op.target_site, "mode": op.mode, "from_site": op.from_site,
                "steps": {s.name: {"status": s.status, "started_at": _iso(s.started_at),
                                   "ended_at": _iso(s.ended_at), "detail": s.detail} for s in op.steps},
            },
            "history": [_history_dict(e) for e in self.history],
            "updated_at": _iso(self.updated_at),
        }

    def dump(self) -> bytes:
        body = self.to_dict()
        del body["updated_at"]
        return json.dumps(body, indent=1, sort_keys=False).encode()

    @classmethod
    def from_dict(cls, data: Any, source: str = "the DR state") -> DrState:
        """Validate and load; anything malformed or foreign is an InputError naming the first problem."""
        try:
            return _load(data)
        except _Malformed as err:
            raise InputError(f"{source} is not a valid DR state ({err}): repair the blob by hand from its "
                             f"history or a previous version; do not just delete it, it records which site is "
                             f"active") from None

    @classmethod
    def parse(cls, raw: bytes, source: str = "the DR state") -> DrState:
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise InputError(f"{source} is not JSON ({err}): repair the blob by hand from a previous version; do "
                             f"not just delete it, it records which site is active") from None
        return cls.from_dict(data, source)


def _history_dict(e: HistoryEntry) -> dict[str, Any]:
    return {"kind": e.kind, "mode": e.mode, "run_id": e.run_id, "by": e.by, "target_site": e.target_site,
            "from_site": e.from_site, "to_site": e.to_site, "outcome": e.outcome,
            "started_at": _iso(e.started_at), "ended_at": _iso(e.ended_at), "fencing_epoch": e.fencing_epoch,
            "steps": {name: status for name, status in e.steps}, "released_by": e.released_by, "reason": e.reason}


# --- loading and checking -----------------------------------------------------------------------------------


class _Malformed(Exception):
    pass


def _field(obj: Any, key: str, kinds: type | tuple[type, ...], where: str, optional: bool = False) -> Any:
    if not isinstance(obj, dict):
        raise _Malformed(f"{where} is not an object")
    if key not in obj:
        raise _Malformed(f"{where} has no {key!r}")
    value = obj[key]
    if value is None and optional:
        return None
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in _tuple(kinds)):
        raise _Malformed(f"{where}.{key} is {value!r}")
    return value


def _tuple(kinds: type | tuple[type, ...]) -> tuple[type, ...]:
    return kinds if isinstance(kinds, tuple) else (kinds,)


def _one_of(obj: Any, key: str, choices: tuple[str, ...], where: str, optional: bool = False) -> Any:
    value = _field(obj, key, str, where, optional)
    if value is not None and value not in choices:
        raise _Malformed(f"{where}.{key} is {value!r}, not one of {', '.join(choices)}")
    return value


def _time(obj: Any, key: str, where: str, optional: bool = False) -> datetime | None:
    value = _field(obj, key, str, where, optional)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _Malformed(f"{where}.{key} is not an ISO 8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise _Malformed(f"{where}.{key} has no time zone: {value!r}")
    return parsed.astimezone(UTC)


def _load(data: Any) -> DrState:
    top = "the object"
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise _Malformed(f"no \"format\": {FORMAT!r}: it is not a DR state of multicloud-dr")
    version = _field(data, "version", int, top)
    if version != FORMAT_VERSION:
        raise _Malformed(f"format version {version}; this multicloud-dr reads version {FORMAT_VERSION} "
                         f"(upgrade multicloud-dr if it is newer)")
    environment = _field(data, "environment", str, top)
    if not _ENVIRONMENT.fullmatch(environment):
        raise _Malformed(f"environment {environment!r} is not a name")
    epoch = _field(data, "fencing_epoch", int, top)
    if epoch < 0:
        raise _Malformed(f"fencing_epoch is negative ({epoch})")
    f = _field(data, "fencing", dict, top)
    fencing = Fencing(_one_of(f, "site", SITES, "fencing", optional=True), _one_of(f, "status", FENCE_STATUSES,
                      "fencing"), _time(f, "at", "fencing", optional=True))
    if (fencing.site is None) != (fencing.status == "none"):
        raise _Malformed(f"fencing is {fencing.status!r} for site {fencing.site!r}")
    h = _field(data, "holder", dict, top, optional=True)
    holder = None if h is None else Holder(_field(h, "run_id", str, "holder"), _time(h, "started_at", "holder"),
                                           _field(h, "by", str, "holder"))
    o = _field(data, "operation", dict, top, optional=True)
    operation = None if o is None else _load_operation(o)
    if (holder is None) != (operation is None):
        raise _Malformed("holder and operation must be both set or both null")
    history = _field(data, "history", list, top)
    return DrState(environment=environment, active_site=_one_of(data, "active_site", SITES, top),
                   fencing_epoch=epoch, fencing=fencing, holder=holder, operation=operation,
                   history=tuple(_load_history(e, i) for i, e in enumerate(history))[-HISTORY_LIMIT:],
                   updated_at=_time(data, "updated_at", top, optional=True) if "updated_at" in data else None)


def _load_operation(o: dict) -> Operation:
    w = "operation"
    steps = []
    for name, s in _field(o, "steps", dict, w).items():
        where = f"operation.steps.{name}"
        if not _STEP_NAME.fullmatch(name):
            raise _Malformed(f"step name {name!r} is not a name")
        _field(s, "status", str, where)
        steps.append(Step(name, _one_of(s, "status", STEP_STATUSES, where), _time(s, "started_at", where, True),
                          _time(s, "ended_at", where, True), s.get("detail")))
    return Operation(_one_of(o, "kind", KINDS, w), _one_of(o, "target_site", SITES, w), _one_of(o, "mode", MODES, w),
                     _one_of(o, "from_site", SITES, w), tuple(steps))


def _load_history(e: Any, index: int) -> HistoryEntry:
    w = f"history[{index}]"
    steps = _field(e, "steps", dict, w)
    if not all(isinstance(v, str) for v in steps.values()):
        raise _Malformed(f"{w}.steps maps step names to statuses")
    return HistoryEntry(kind=_one_of(e, "kind", KINDS, w), mode=_one_of(e, "mode", MODES, w),
                        run_id=_field(e, "run_id", str, w), by=_field(e, "by", str, w),
                        target_site=_one_of(e, "target_site", SITES, w), from_site=_one_of(e, "from_site", SITES, w),
                        to_site=_one_of(e, "to_site", SITES, w), outcome=_field(e, "outcome", str, w),
                        started_at=_time(e, "started_at", w), ended_at=_time(e, "ended_at", w),  # type: ignore[arg-type]
                        fencing_epoch=_field(e, "fencing_epoch", int, w), steps=tuple(steps.items()),
                        released_by=_field(e, "released_by", str, w, optional=True),
                        reason=_field(e, "reason", str, w, optional=True))


# --- argument checks ----------------------------------------------------------------------------------------


def _site(value: Any, what: str) -> Site:
    if value not in SITES:
        raise InputError(f"{what} {value!r} is not a site: use one of {', '.join(SITES)}")
    return value


def _other(site: str) -> str:
    return "dr" if site == "primary" else "primary"


def _choice(value: Any, choices: tuple[str, ...], what: str) -> Any:
    if value not in choices:
        raise InputError(f"{what} {value!r} is not one of {', '.join(choices)}")
    return value


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{what} must be a non-empty string, got {value!r}")
    return value


def _environment(value: Any) -> str:
    if not isinstance(value, str) or not _ENVIRONMENT.fullmatch(value):
        raise ConfigError(f"environment {value!r} cannot name a DR state: use letters, digits, _ . - (64 at most)")
    return value


def _step_name(value: Any) -> str:
    if not isinstance(value, str) or not _STEP_NAME.fullmatch(value):
        raise InputError(f"step name {value!r}: use letters, digits and _ . : / - (100 at most)")
    return value


def _json_able(value: Any, what: str) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise InputError(f"{what} is not JSON ({err}): pass plain dicts, lists, strings and numbers") from None


def _utc(at: datetime) -> datetime:
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise InputError(f"a time with a time zone is needed (the storage server's clock), got {at!r}")
    return at.astimezone(UTC)


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat()


# --- the store ----------------------------------------------------------------------------------------------

Transition = Callable[[DrState, datetime], DrState]
"""A change: (the current state, the storage server's time now) -> the new state (or the same one)."""


class DrStateStore:
    """The DR state of one environment in Azure Blob: `<location>/<environment>.json`.

    `storage` is a wasb connection id / URI / Endpoint (the client comes from the connection layer) or a
    BlobServiceClient. Nothing is read or written until a method is called.
    """

    def __init__(self, storage: str | Endpoint | BlobServiceClient, location: str, environment: str) -> None:
        url = StorageUrl.parse(location)
        if url.scheme != "wasb":
            raise ConfigError(f"the DR state lives in Azure Blob storage: location {location!r} must be "
                              f"wasb://CONTAINER/PREFIX")
        self.environment = _environment(environment)
        self.url = url.join(f"{environment}.json")
        self._storage = storage
        self._blob: BlobClient | None = None

    @classmethod
    def for_topology(cls, topology, prefix: str = "state") -> DrStateStore:
        """Next to the backups: the backup container's `<prefix>/<environment>.json`, through its connection."""
        container = StorageUrl.parse(topology.backup.location).bucket
        return cls(topology.backup.storage_conn_id, f"wasb://{container}/{prefix}", topology.environment)

    @property
    def blob(self) -> BlobClient:
        if self._blob is None:
            service = self._storage
            if not isinstance(service, BlobServiceClient):
                from multicloud_dr.connections.wasb import blob_service_client

                service = blob_service_client(service)
            self._blob = service.get_blob_client(self.url.bucket, self.url.path)
        return self._blob

    def read(self) -> tuple[DrState | None, str | None]:
        """The state and its ETag; (None, None) when it was never written."""
        state, etag, _ = self._download()
        return state, etag

    def create_if_absent(self, active_site: str = "primary") -> tuple[DrState, str]:
        """Write a new state unless one exists (If-None-Match: *); either way return what is stored. An existing
        state is never overwritten, whatever its active site."""
        state = DrState.new(self.environment, active_site)
        try:
            result = self.blob.upload_blob(state.dump(), overwrite=False, content_settings=_JSON)
        except ResourceExistsError:
            pass
        except ResourceNotFoundError:
            raise self._no_container() from None
        except HttpResponseError as err:
            if err.status_code not in (409, 412):
                raise
        else:
            return replace(state, updated_at=result["last_modified"]), result["etag"]
        current, etag = self.read()
        if current is None or etag is None:
            raise StateConflictError(f"{self.url} was created and deleted again meanwhile: another run is changing "
                                     f"the DR state; re-read it")
        return current, etag

    def update(self, change: Transition, etag: str) -> tuple[DrState, str]:
        """Apply `change` to the version `etag` names and write the result only if that version is still the
        stored one. Someone else's write meanwhile: StateConflictError, nothing written. A change that changes
        nothing writes nothing (the ETag stays)."""
        state, current_etag, now = self._download(etag=etag)
        if state is None or current_etag is None:
            raise self._conflict("was deleted")
        new = change(state, now)
        if new == state:
            return state, current_etag
        if new.environment != self.environment:
            raise InputError(f"a change turned the DR state of {self.environment} into {new.environment}'s")
        try:
            result = self.blob.upload_blob(new.dump(), overwrite=True, etag=current_etag,
                                           match_condition=MatchConditions.IfNotModified, content_settings=_JSON)
        except (ResourceModifiedError, ResourceNotFoundError):
            raise self._conflict("changed") from None
        except HttpResponseError as err:
            if err.status_code == 412:
                raise self._conflict("changed") from None
            raise
        return replace(new, updated_at=result["last_modified"]), result["etag"]

    def apply(self, change: Transition) -> tuple[DrState, str]:
        """Read, then `update` once (no retry on a conflict: the caller re-reads and decides again)."""
        state, etag = self.read()
        if state is None or etag is None:
            raise InputError(f"no DR state at {self.url}: create it first (create_if_absent)")
        return self.update(change, etag)

    def _download(self, etag: str | None = None) -> tuple[DrState | None, str | None, datetime]:
        seen: dict[str, str] = {}

        def hook(response) -> None:
            seen["date"] = response.http_response.headers.get("Date", "")

        kwargs: dict[str, Any] = {"raw_response_hook": hook}
        if etag is not None:
            kwargs.update(etag=etag, match_condition=MatchConditions.IfNotModified)
        try:
            download = self.blob.download_blob(**kwargs)
            raw = download.readall()
        except ResourceNotFoundError as err:
            if getattr(err, "error_code", None) == "ContainerNotFound":
                raise self._no_container() from None
            if etag is not None:
                raise self._conflict("was deleted") from None
            return None, None, _server_time(seen)
        except ResourceModifiedError:
            raise self._conflict("changed") from None
        except HttpResponseError as err:
            if etag is not None and err.status_code in (304, 412):
                raise self._conflict("changed") from None
            raise
        state = DrState.parse(raw, str(self.url))
        if state.environment != self.environment:
            raise InputError(f"{self.url} holds the DR state of environment {state.environment!r}, not "
                             f"{self.environment!r}: fix the location or the environment")
        props = download.properties
        return replace(state, updated_at=props.last_modified), props.etag, _server_time(seen)

    def _conflict(self, what: str) -> StateConflictError:
        return StateConflictError(f"another run {what} the DR state at {self.url} after this run read it: nothing "
                                  f"was written; re-read the state and decide again (if another run holds it, stop)")

    def _no_container(self) -> ConfigError:
        return ConfigError(f"container {self.url.bucket!r} does not exist: create it (az storage container create "
                           f"-n {self.url.bucket}) or fix the DR state's location")


_JSON = ContentSettings(content_type="application/json")


def _server_time(seen: Mapping[str, str]) -> datetime:
    if not seen.get("date"):
        raise DrError("the storage service sent no Date header; cannot tell its time")
    return email.utils.parsedate_to_datetime(seen["date"]).astimezone(UTC)
