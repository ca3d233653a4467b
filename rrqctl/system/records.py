"""What `up` made for a cable, and the cable as it saw it: RUN/NAME.json, so `down` and
`check` know even after a crash or a changed declaration."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from rrqctl.aspects import Record
from rrqctl.system.paths import Paths

if TYPE_CHECKING:
    from rrqctl.model import Cable


def load_record(paths: Paths, name: str) -> tuple[dict[str, Any] | None, Record]:
    """(the cable as up saw it, what up made); (None, empty) when there is no record."""
    try:
        with open(paths.state(name)) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None, Record()
    return data.get("cable"), Record(**data.get("record", {}))


def recorded_cable(paths: Paths, name: str) -> Cable | None:
    """The cable as up saw it (None if there is no record, or it no longer reads)."""
    from rrqctl.model import Cable  # pydantic: loaded only here

    data, _ = load_record(paths, name)
    try:
        return Cable.model_validate(data) if data else None
    except ValueError:
        return None


def save_record(paths: Paths, cable: Cable, record: Record) -> None:
    os.makedirs(paths.run_dir, mode=0o755, exist_ok=True)
    tmp = paths.state(cable.name) + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"cable": cable.model_dump(mode="json"), "record": asdict(record)}, f, indent=1)
    os.replace(tmp, paths.state(cable.name))
