"""Per-process pieces of the notifications service: the directory of communes, loaded as
the service starts."""

from __future__ import annotations

from nameko.extensions import DependencyProvider

from infra.communes import communes


class CommunesPreloaded(DependencyProvider):
    """Loads the process's directory of communes (infra.communes, read once per process,
    what the mails' commune names come from) as the service starts. Loaded at the first
    event instead, its second of CSV parsing fell among the first bookings' mails and held
    every green thread of the process meanwhile."""

    def setup(self) -> None:
        communes()
