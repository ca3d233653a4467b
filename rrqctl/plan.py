"""What `up` and `down` would do on this host now: desired cable vs observed state -> actions.

Pure: the observation comes in as data. Each action says, as a command a person knows,
what it does; system/host.py carries them out and undoes them on failure. Both are loops
over the host aspects (aspects.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rrqctl.aspects import ASPECTS, BY_STEP, Action, Observed, Record, Step
from rrqctl.errors import ActionError, Location

if TYPE_CHECKING:
    from rrqctl.model import Cable


def plan_up(
    cable: Cable, seen: Observed, engine_argv: Sequence[str], steps: Sequence[Step] = tuple(Step)
) -> list[Action]:
    """The actions that bring cable up from what is seen; [] when it is already up."""
    _refuse(cable, seen)
    return [
        action
        for aspect in ASPECTS
        if aspect.step in steps
        for action in aspect.want(cable, seen, engine_argv)
    ]


def _refuse(cable: Cable, seen: Observed) -> None:
    """Host states that up must not paper over; said before anything is changed."""
    if cable.local != "tap":
        return
    if seen.tap_exists and not seen.tap_is_tap:
        raise ActionError(f"{_at(cable, '')}{cable.name} exists and is not a tap")
    if cable.owner == "networkd" and not seen.tap_exists:
        raise ActionError(
            f"{_at(cable, '')}{cable.name} does not exist yet: systemd-networkd makes it"
        )
    if cable.bridge and not seen.bridge_exists and cable.owner == "rrqctl":
        raise ActionError(f"{_at(cable, 'bridge')}there is no bridge {cable.bridge} on this host")


def _at(cable: Cable, field_name: str) -> str:
    where = cable.where(field_name)
    return f"{Location.parse(where)}: " if where else ""


def plan_down(
    cable: Cable, record: Record, seen: Observed, steps: Sequence[Step] = tuple(Step)
) -> list[Action]:
    """Undo what the record says up made, in reverse; things made by others stay. Deleting
    the tap takes what was set on it along: those are not undone one by one."""
    out: list[Action] = []
    tap_goes = Step.TAP in steps and bool(BY_STEP[Step.TAP].unwant(cable, record, seen))
    for aspect in reversed(ASPECTS):
        gone_with_tap = tap_goes and aspect.of_link and aspect.step is not Step.TAP
        if aspect.step in steps and not gone_with_tap:
            out += aspect.unwant(cable, record, seen)
    return out
