"""The main menu: what each role does, in its own words. A person with several roles gets
the entries of each, once; the entry of the page they are on is marked current."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from contracts.caller import Role


@dataclass(frozen=True)
class Entry:
    label: str
    path: str
    # query values the entry's link sets: the entry is current only with those values
    query: tuple[tuple[str, str], ...] = ()
    # other pages that belong to this entry (their sub-pages too)
    covers: tuple[str, ...] = ()

    @property
    def href(self) -> str:
        if not self.query:
            return self.path
        return self.path + "?" + "&".join(f"{name}={value}" for name, value in self.query)


@dataclass(frozen=True)
class MenuItem:
    label: str
    href: str
    current: bool = field(default=False)


HOME = Entry("Tableau de bord", "/tableau-de-bord")

# the role's tasks, in the order the role meets them
MENUS: dict[Role, tuple[Entry, ...]] = {
    Role.AGENT: (
        Entry("Chercher", "/catalogue", covers=("/annonces/",)),
        Entry("Mes demandes", "/reservations", (("vue", "emprunteur"),)),
        Entry("Experts", "/experts"),
    ),
    Role.MANAGER: (
        Entry("Mes annonces", "/annonces"),
        Entry("Publier une annonce", "/annonces/nouvelle"),
        Entry("Demandes à décider", "/reservations", (("vue", "preteur"), ("statut", "requested"))),
        Entry("Missions", "/missions"),
        Entry("Conventions", "/conventions", covers=("/deliberations",)),
        Entry("Activité", "/rapports/activite"),
    ),
    Role.FINANCE: (
        Entry("Factures", "/finances", covers=("/finances/factures",)),
        Entry("Paiements", "/finances/rapprochement"),
        Entry("Relevés", "/finances/releve", covers=("/finances/balance-agee",)),
        Entry("Compensation", "/finances/compensation"),
        Entry("Activité", "/rapports/activite"),
    ),
    Role.OPERATOR: (
        Entry("Files d'attente", "/exploitation/files-d-attente"),
        Entry("Épisodes", "/urgences"),
    ),
    Role.COORDINATOR: (Entry("Épisodes", "/urgences"),),
}

# what a page shows when its link sets no value (/reservations is the borrower's view)
QUERY_DEFAULTS = {("/reservations", "vue"): "emprunteur"}


def _under(path: str, base: str) -> bool:
    return path == base or path.startswith(base.rstrip("/") + "/")


def _fit(entry: Entry, path: str, query: Mapping[str, str]) -> tuple[int, int] | None:
    """How closely the entry names the page (longer path, more query values: closer), or
    None when it does not."""
    bases = [b for b in (entry.path, *entry.covers) if _under(path, b)]
    if not bases:
        return None
    for name, value in entry.query:
        if (query.get(name) or QUERY_DEFAULTS.get((entry.path, name))) != value:
            return None
    return max(len(b) for b in bases), len(entry.query)


def menu(
    roles: Iterable[Role], path: str, query: Mapping[str, str] | None = None
) -> list[MenuItem]:
    """The menu of someone with these roles on this page: the dashboard, then each role's
    entries (once each, the same page named by two roles under the first name), the
    closest one to the page marked current."""
    held = set(roles)
    entries = [HOME]
    for role in Role:
        if role in held:
            entries += [e for e in MENUS.get(role, ()) if e.href not in {x.href for x in entries}]
    query = query or {}
    fits = [_fit(e, path, query) for e in entries]
    found = [i for i, fit in enumerate(fits) if fit is not None]
    current = max(found, key=lambda i: fits[i], default=None)  # the first of equals
    return [MenuItem(e.label, e.href, i == current) for i, e in enumerate(entries)]
