"""SLA clocks for complaints, computed from their event history at a given ``as_of``.

The resolution clock runs from ``created`` while the complaint is neither waiting on the
client nor resolved; ``reopened`` restarts it where it stopped (time spent resolved does
not count). The first-response clock is the same clock (so waiting on the client pauses it
too) cut off at the first ``responded`` or ``resolved`` (which answers the client as well).
Events after ``as_of`` are ignored, so a clock is a pure function of (history, policy,
calendar, as_of). A threshold counts as crossed once the business time used reaches it:
answering at exactly the due second is late.

Everything is computed for a whole batch at once: the history becomes "running segments",
each segment's business seconds come from its calendar's interval table, and the instant a
threshold is crossed is found by adding the remaining business seconds to the start of the
segment in which it falls. Work is O(events · log intervals), with all calendars of the
batch answered by one ``CalendarStack`` so the cost does not grow with the team's size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from config.sla_policy import CLOCKS, SEVERITIES, ClockName, LadderStep, SlaPolicy
from config.team_policy import TeamPolicy
from tasks.complaints.business_hours import (
    BusinessCalendar,
    CalendarStack,
    HolidaySource,
    Seconds,
    epoch,
    instant,
    to_epoch_seconds,
)

EventKind = Literal["created", "responded", "waiting_on_client", "resumed", "resolved", "reopened"]
ClockState = Literal["ok", "warning", "breached", "met", "paused", "resolved", "not_started"]
EVENT_KINDS: tuple[EventKind, ...] = (
    "created",
    "reopened",
    "resumed",
    "responded",
    "waiting_on_client",
    "resolved",
)
# Same-instant events are applied in EVENT_KINDS order: a complaint created and answered in
# the same second has been created first.
_KIND_CODE = {k: i for i, k in enumerate(EVENT_KINDS)}
_NEVER = np.iinfo(np.int64).max
NEVER = _NEVER  # an instant that is not coming (paused, stopped, not started)
DEFAULT_WARNING_FRACTION = 0.75
CALENDAR_DEFAULT = "default"


def step_column(clock: ClockName, step: LadderStep) -> str:
    """Name of the ``ClockBatch.to_frame`` column with the instant a ladder step is crossed."""
    return f"{clock}_{step.kind}_l{step.level}_at"


def team_calendars(team: TeamPolicy, sla: SlaPolicy) -> dict[str, BusinessCalendar]:
    """One calendar per manager (their zone, hours and holidays) plus ``"default"``.

    A complaint's clock runs on its account owner's calendar, not on whoever stands in,
    so that a hand-over never moves a due time.
    """

    def source(country: str | None, subdivision: str | None) -> HolidaySource:
        adjust = sla.holiday_calendars.get(country or "")
        return HolidaySource(
            country=country,
            subdivision=subdivision or (adjust.subdivision if adjust else None),
            extra_dates=frozenset(adjust.extra_dates) if adjust else frozenset(),
            removed_dates=frozenset(adjust.removed_dates) if adjust else frozenset(),
        )

    spec = sla.default_calendar
    calendars = {
        CALENDAR_DEFAULT: BusinessCalendar.from_hours(
            CALENDAR_DEFAULT,
            spec.timezone,
            spec.working_hours,
            source(spec.holiday_country, spec.holiday_subdivision),
        )
    }
    for m in team.managers:
        calendars[m.id] = BusinessCalendar.from_hours(
            m.id,
            m.timezone,
            team.hours_of(m.id),
            source(m.holiday_country, m.holiday_subdivision),
        )
    return calendars


@dataclass(frozen=True)
class _Segments:
    """Running stretches of one clock, sorted by complaint then start."""

    pos: npt.NDArray[np.intp]  # row of the complaint in the batch
    start: Seconds
    end: Seconds  # as_of when still running
    open: npt.NDArray[np.bool_]  # still running at as_of


def _ffill_flag(
    sets: npt.NDArray[np.bool_], resets: npt.NDArray[np.bool_], first: npt.NDArray[np.bool_]
) -> npt.NDArray[np.bool_]:
    """Flag after each event: last set/reset wins; each complaint starts with the flag off."""
    decided = sets | resets | first
    last = np.where(decided, np.arange(sets.size), 0)
    np.maximum.accumulate(last, out=last)
    return sets[last]


def _running_segments(
    pos: npt.NDArray[np.intp], at: Seconds, kind: npt.NDArray[np.int8], as_of: int
) -> _Segments:
    first = np.ones(pos.size, dtype=bool)
    first[1:] = pos[1:] != pos[:-1]
    created, reopened = kind == _KIND_CODE["created"], kind == _KIND_CODE["reopened"]
    resolved = _ffill_flag(kind == _KIND_CODE["resolved"], created | reopened, first)
    paused = _ffill_flag(
        kind == _KIND_CODE["waiting_on_client"],
        created | reopened | (kind == _KIND_CODE["resumed"]),
        first,
    )
    running = ~resolved & ~paused
    before = np.zeros(pos.size, dtype=bool)
    before[1:] = running[:-1]
    before[first] = False
    starts = np.flatnonzero(running & ~before)
    ends = np.flatnonzero(~running & before)
    # Starts and ends alternate within a complaint, so a start's end is the next end event
    # if that event belongs to the same complaint; otherwise the segment is still running.
    ends_ext = np.append(ends, pos.size)
    nxt = ends_ext[np.searchsorted(ends, starts)]
    pos_ext = np.append(pos, -1)
    at_ext = np.append(at, as_of)
    has_end = pos_ext[nxt] == pos[starts]
    end_at = np.where(has_end, at_ext[nxt], as_of)
    return _Segments(pos=pos[starts], start=at[starts], end=end_at, open=~has_end)


class _ClockMath:
    """Business seconds and crossings for one clock's segments, each on its own calendar."""

    def __init__(
        self, seg: _Segments, cal_of_row: npt.NDArray[np.intp], stack: CalendarStack, rows: int
    ) -> None:
        self.seg = seg
        self.stack = stack
        self.code = cal_of_row[seg.pos]
        length = stack.business_seconds_between(seg.start, seg.end, self.code)
        self.length = length
        self.used = np.bincount(seg.pos, weights=length, minlength=rows).astype(np.int64)
        cum = np.cumsum(length) - length
        group_first = np.ones(seg.pos.size, dtype=bool)
        group_first[1:] = seg.pos[1:] != seg.pos[:-1]
        base = np.where(group_first, cum, 0)
        np.maximum.accumulate(base, out=base)
        self.used_before = cum - base
        self.rows = rows

    def crossings(self, thresholds: Sequence[Seconds]) -> list[Seconds]:
        """Instant each row's clock reaches each threshold (projected if running, else never).

        All thresholds go through one ``add_business_seconds`` call: the batch is evaluated
        every 15 minutes, so fixed per-call costs matter as much as per-row ones.
        """
        s = self.seg
        k = len(thresholds)
        need = np.stack([t[s.pos] for t in thresholds]) - self.used_before  # (k, segments)
        # At most one segment per complaint qualifies: the one in which the total passes
        # the threshold, or the open last one when the total has not reached it yet.
        which, seg = np.nonzero((need > 0) & (s.open | (need <= self.length)))
        landed = self.stack.add_business_seconds(s.start[seg], need[which, seg], self.code[seg])
        out = np.full((k, self.rows), _NEVER, dtype=np.int64)
        out[which, s.pos[seg]] = landed
        return list(out)


def _times(seconds: Seconds) -> pd.DatetimeIndex:
    """Epoch seconds to UTC instants, with NaT for "never"; stays in datetime64 throughout."""
    raw = seconds.astype("datetime64[s]")
    raw[seconds == _NEVER] = np.datetime64("NaT")
    return pd.DatetimeIndex(raw).tz_localize("UTC")


@dataclass(frozen=True)
class ClockArrays:
    """One clock for every complaint of a batch; instants are epoch seconds, ``NEVER`` if none."""

    target_minutes: npt.NDArray[np.int64]
    used_seconds: npt.NDArray[np.int64]
    due: Seconds  # past if breached, projected if running, NEVER if paused or stopped short
    state: npt.NDArray[np.object_]
    running: npt.NDArray[np.bool_]
    steps: dict[tuple[int, str], Seconds]  # (level, kind) -> instant the step is crossed


@dataclass(frozen=True)
class ClockBatch:
    """Clock state of a batch at ``as_of``, as arrays aligned with the input rows.

    Arrays rather than a DataFrame because the escalation pass reads a handful of them for
    every 15-minute run; ``to_frame`` gives the table for exports and artifacts.
    """

    complaint_id: npt.NDArray[np.object_]
    index: pd.Index
    clocks: dict[ClockName, ClockArrays]
    is_open: npt.NDArray[np.bool_]
    as_of: datetime

    def __len__(self) -> int:
        return len(self.complaint_id)

    def to_frame(self) -> pd.DataFrame:
        """Per clock: ``_target_min``, ``_used_min``, ``_fraction``, ``_due_at``, ``_state``,
        ``_running`` and one ``step_column`` per ladder step; plus ``is_open``."""
        out: dict[str, object] = {"complaint_id": self.complaint_id}
        for clock, c in self.clocks.items():
            out[f"{clock}_target_min"] = c.target_minutes
            out[f"{clock}_used_min"] = c.used_seconds / 60.0
            out[f"{clock}_fraction"] = c.used_seconds / (c.target_minutes * 60)
            out[f"{clock}_due_at"] = _times(c.due)
            out[f"{clock}_state"] = c.state
            out[f"{clock}_running"] = c.running
            for (level, kind), at in c.steps.items():
                out[f"{clock}_{kind}_l{level}_at"] = _times(at)
        out["is_open"] = self.is_open
        return pd.DataFrame(out, index=self.index)


def _codes(values: pd.Series, known: Sequence[str], what: str) -> npt.NDArray[np.intp]:
    """Positions of ``values`` in ``known``; categoricals (the fast path) map by category."""
    uniques: list[object]
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        uniques = list(values.cat.categories)
    else:
        codes, found = pd.factorize(values.to_numpy(dtype=object))
        uniques = list(found)
    lookup: dict[object, int] = {k: i for i, k in enumerate(known)}
    table = np.array([lookup.get(u, -1) for u in uniques] + [-1], dtype=np.intp)
    mapped = table[codes]  # code -1 (missing value) picks the trailing -1
    if (mapped < 0).any():
        bad = sorted({str(u) for u in values[mapped < 0].tolist()})
        raise (KeyError if what == "calendars" else ValueError)(f"unknown {what}: {bad}")
    return mapped


@dataclass(frozen=True)
class PreparedBatch:
    """Complaints and histories turned into arrays once, ready to be clocked at any ``as_of``.

    The DataFrame-to-array work (string lookups, time conversion, sorting) does not depend on
    ``as_of``, so a run does it once; so does a sweep over many instants (a replay, the
    month simulation) instead of once per instant.
    """

    complaint_id: npt.NDArray[np.object_]
    index: pd.Index
    cal_code: npt.NDArray[np.intp]
    stack: CalendarStack
    targets: dict[ClockName, npt.NDArray[np.int64]]  # minutes, per row
    ladder: dict[ClockName, list[LadderStep]]
    warn_fraction: dict[ClockName, float]
    pos: npt.NDArray[np.intp]  # events, sorted by (complaint row, time, kind order)
    at: Seconds
    kind: npt.NDArray[np.int8]

    def __len__(self) -> int:
        return len(self.complaint_id)


def prepare_batch(
    complaints: pd.DataFrame,
    events: pd.DataFrame,
    policy: SlaPolicy,
    calendars: Mapping[str, BusinessCalendar],
) -> PreparedBatch:
    """Validate and convert a batch; see ``evaluate_clocks`` for the expected columns.

    Categorical ``severity``, ``calendar`` and ``kind`` columns are the fast path.
    """
    rows = len(complaints)
    ids = pd.Index(complaints["complaint_id"])
    if not ids.is_unique:
        raise ValueError("complaint_id must be unique within a batch")
    cal_names = list(calendars)
    cal_code = _codes(complaints["calendar"], cal_names, "calendars")
    at = to_epoch_seconds(events["at"])
    kind = _codes(events["kind"], EVENT_KINDS, "complaint event kinds").astype(np.int8)
    pos = ids.get_indexer(pd.Index(events["complaint_id"]))
    keep = pos >= 0
    pos, at, kind = pos[keep], at[keep], kind[keep]
    order = np.lexsort((kind, at, pos))

    # Few distinct (severity, tier) pairs: look each up once, then broadcast by code.
    sev_codes = _codes(complaints["severity"], SEVERITIES, "severities")
    if "tier" in complaints:
        tier_codes, tiers = pd.factorize(complaints["tier"].to_numpy(dtype=object))
    else:
        tier_codes, tiers = np.full(rows, -1, dtype=np.intp), np.array([], dtype=object)
    width = len(tiers) + 1
    codes = sev_codes * width + (tier_codes + 1)
    per_code = [
        policy.target_for(sev, None if t == 0 else tiers[t - 1])
        for sev in SEVERITIES
        for t in range(width)
    ]
    ladder = {c: list(policy.ladder.get(c) or []) for c in CLOCKS}
    return PreparedBatch(
        complaint_id=complaints["complaint_id"].to_numpy(dtype=object),
        index=complaints.index,
        cal_code=cal_code,
        stack=CalendarStack([calendars[n] for n in cal_names]),
        targets={
            c: np.array([t.minutes(c) for t in per_code], dtype=np.int64)[codes] for c in CLOCKS
        },
        ladder=ladder,
        warn_fraction={
            c: min(
                (s.at_fraction for s in ladder[c] if s.kind == "warning"),
                default=DEFAULT_WARNING_FRACTION,
            )
            for c in CLOCKS
        },
        pos=pos[order],
        at=at[order],
        kind=kind[order],
    )


def evaluate_clocks(
    complaints: pd.DataFrame,
    events: pd.DataFrame,
    policy: SlaPolicy,
    calendars: Mapping[str, BusinessCalendar],
    as_of: datetime,
) -> ClockBatch:
    """SLA state of every complaint at ``as_of``, aligned with the rows of ``complaints``.

    ``complaints``: ``complaint_id`` (unique), ``severity``, optional ``tier``, ``calendar``
    (a key of ``calendars``, usually the owner's id). ``events``: ``complaint_id``, ``kind``,
    ``at`` (aware); events of other complaints or after ``as_of`` are ignored.
    """
    return evaluate_prepared(prepare_batch(complaints, events, policy, calendars), as_of)


def evaluate_prepared(batch: PreparedBatch, as_of: datetime) -> ClockBatch:
    """The clocks of a prepared batch at ``as_of``; only what ``as_of`` changes is redone."""
    now = epoch(as_of)
    rows = len(batch)
    keep = batch.at <= now  # a subset of a sorted array stays sorted
    pos, at, kcode = batch.pos[keep], batch.at[keep], batch.kind[keep]
    # Nothing counts before the complaint exists: drop events that precede its creation.
    created_at = np.full(rows, _NEVER, dtype=np.int64)
    is_created = kcode == _KIND_CODE["created"]
    np.minimum.at(created_at, pos[is_created], at[is_created])
    keep = at >= created_at[pos]
    pos, at, kcode = pos[keep], at[keep], kcode[keep]

    res_seg = _running_segments(pos, at, kcode, now)
    answered = np.full(rows, _NEVER, dtype=np.int64)
    stops = (kcode == _KIND_CODE["responded"]) | (kcode == _KIND_CODE["resolved"])
    np.minimum.at(answered, pos[stops], at[stops])
    cut = answered[res_seg.pos]
    fr_keep = res_seg.start < cut
    fr_seg = _Segments(
        pos=res_seg.pos[fr_keep],
        start=res_seg.start[fr_keep],
        end=np.minimum(res_seg.end, cut)[fr_keep],
        open=(res_seg.open & (cut == _NEVER))[fr_keep],
    )

    clocks: dict[ClockName, ClockArrays] = {}
    is_open = np.zeros(rows, dtype=bool)
    started = created_at != _NEVER
    clock: ClockName
    for clock, seg in zip(CLOCKS, (fr_seg, res_seg), strict=True):
        target_min = batch.targets[clock]
        target = target_min * 60
        math_ = _ClockMath(seg, batch.cal_code, batch.stack, rows)
        running = np.zeros(rows, dtype=bool)
        running[seg.pos[seg.open]] = True
        steps = batch.ladder[clock]
        warn = np.ceil(np.round(batch.warn_fraction[clock] * target, 6)).astype(np.int64)
        used = math_.used
        stopped = (
            answered != _NEVER
            if clock == "first_response"
            else started & ~running & _resolved(pos, kcode, rows)
        )
        state = np.select(
            [
                ~started,
                stopped & (used >= target),
                stopped,
                used >= target,
                started & ~running,
                used >= warn,
            ],
            [
                "not_started",
                "breached",
                "met" if clock == "first_response" else "resolved",
                "breached",
                "paused",
                "warning",
            ],
            default="ok",
        )
        thresholds = [target] + [
            np.ceil(np.round(step.at_fraction * target, 6)).astype(np.int64) for step in steps
        ]
        due, *crossed = math_.crossings(thresholds)
        clocks[clock] = ClockArrays(
            target_minutes=target_min,
            used_seconds=used,
            due=due,
            state=state.astype(object),
            running=running,
            steps={(step.level, step.kind): at for step, at in zip(steps, crossed, strict=True)},
        )
        if clock == "resolution":
            is_open = started & ~stopped
    return ClockBatch(
        complaint_id=batch.complaint_id,
        index=batch.index,
        clocks=clocks,
        is_open=is_open,
        as_of=as_of,
    )


def _resolved(
    pos: npt.NDArray[np.intp], kcode: npt.NDArray[np.int8], rows: int
) -> npt.NDArray[np.bool_]:
    """Whether each complaint's latest resolved/reopened event is a resolution."""
    relevant = (kcode == _KIND_CODE["resolved"]) | (kcode == _KIND_CODE["reopened"])
    last = np.full(rows, -1, dtype=np.int8)
    # Events are sorted by (complaint, time), so the last write per complaint wins.
    last[pos[relevant]] = kcode[relevant]
    return last == _KIND_CODE["resolved"]


@dataclass(frozen=True)
class ClockReading:
    target_minutes: int
    used_minutes: float
    fraction: float
    due_at: datetime | None
    state: ClockState
    running: bool


@dataclass(frozen=True)
class ComplaintClock:
    first_response: ClockReading
    resolution: ClockReading
    is_open: bool


def evaluate_complaint(
    history: Sequence[tuple[str, datetime]],
    severity: str,
    policy: SlaPolicy,
    calendar: BusinessCalendar,
    as_of: datetime,
    tier: str | None = None,
) -> ComplaintClock:
    """One complaint's clocks; the same code path as the batch, for callers with one row."""
    complaints = pd.DataFrame(
        {"complaint_id": [0], "severity": [severity], "tier": [tier], "calendar": ["c"]}
    )
    events = pd.DataFrame(
        {
            "complaint_id": [0] * len(history),
            "kind": [k for k, _ in history],
            "at": pd.to_datetime([t for _, t in history], utc=True),
        }
    )
    batch = evaluate_clocks(complaints, events, policy, {"c": calendar}, as_of)

    def reading(clock: ClockName) -> ClockReading:
        c = batch.clocks[clock]
        due = int(c.due[0])
        return ClockReading(
            target_minutes=int(c.target_minutes[0]),
            used_minutes=int(c.used_seconds[0]) / 60.0,
            fraction=int(c.used_seconds[0]) / (int(c.target_minutes[0]) * 60),
            due_at=None if due == _NEVER else instant(due),
            state=c.state[0],
            running=bool(c.running[0]),
        )

    return ComplaintClock(
        first_response=reading("first_response"),
        resolution=reading("resolution"),
        is_open=bool(batch.is_open[0]),
    )


__all__ = [
    "CALENDAR_DEFAULT",
    "CLOCKS",
    "NEVER",
    "ClockArrays",
    "ClockBatch",
    "ClockReading",
    "ComplaintClock",
    "PreparedBatch",
    "evaluate_clocks",
    "evaluate_complaint",
    "evaluate_prepared",
    "prepare_batch",
    "step_column",
    "team_calendars",
]
