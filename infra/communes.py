"""Communes reference data (INSEE code, SIREN, coordinates, EPCI): lookup, search, distance.

Loaded once per process from data/communes.csv.gz (see data/README.md for sources and
licences). Communes are reference data, not a service.
"""

from __future__ import annotations

import csv
import gzip
import math
import unicodedata
from dataclasses import dataclass
from functools import cache

from infra.settings import PROJECT_ROOT

DATA_FILE = PROJECT_ROOT / "data" / "communes.csv.gz"
EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True, slots=True)
class Commune:
    insee_code: str
    name: str
    siren: str
    department_code: str
    department: str
    region: str
    population: int
    postal_codes: tuple[str, ...]
    epci_siren: str | None
    epci_name: str | None
    latitude: float | None
    longitude: float | None
    coord_source: str | None

    def as_dict(self) -> dict:
        return {
            "insee_code": self.insee_code,
            "name": self.name,
            "siren": self.siren,
            "department_code": self.department_code,
            "department": self.department,
            "region": self.region,
            "population": self.population,
            "postal_codes": list(self.postal_codes),
            "epci": {"siren": self.epci_siren, "name": self.epci_name} if self.epci_siren else None,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "coordinates_source": self.coord_source,
        }


LIGATURES = str.maketrans({"œ": "oe", "æ": "ae"})


def fold(text: str) -> str:
    """Lower-case, accents, ligatures and punctuation folded: 'Saint-Étienne' -> 'saint etienne',
    'Vandœuvre' -> 'vandoeuvre'."""
    decomposed = unicodedata.normalize("NFKD", text.lower().translate(LIGATURES))
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join("".join(c if c.isalnum() else " " for c in bare).split())


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance on the mean Earth sphere."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def _float(value: str) -> float | None:
    return float(value) if value else None


class CommuneDirectory:
    def __init__(self, communes: list[Commune]):
        self._by_code = {c.insee_code: c for c in communes}
        self._folded = [(fold(c.name), c) for c in communes]

    def __len__(self) -> int:
        return len(self._by_code)

    def get(self, insee_code: str) -> Commune | None:
        return self._by_code.get(insee_code)

    def search(
        self, q: str | None = None, department: str | None = None, limit: int = 20
    ) -> list[Commune]:
        """By code prefix or folded name; exact and prefix name matches first, then the
        most populous."""
        needle = fold(q or "")
        code = (q or "").strip().upper()  # Corsica: 2A004, 2B033
        hits = []
        for folded, commune in self._folded:
            if department and commune.department_code != department:
                continue
            if not needle:
                rank = 3
            elif folded == needle or commune.insee_code == code:
                rank = 0
            elif folded.startswith(needle) or commune.insee_code.startswith(code):
                rank = 1
            elif needle in folded:
                rank = 2
            else:
                continue
            hits.append((rank, -commune.population, commune.name, commune))
        hits.sort(key=lambda h: h[:3])
        return [h[3] for h in hits[:limit]]

    def distance_km(self, code_a: str, code_b: str) -> float | None:
        a, b = self.get(code_a), self.get(code_b)
        if a is None or b is None or a.latitude is None or b.latitude is None:
            return None
        return great_circle_km(a.latitude, a.longitude, b.latitude, b.longitude)


def load_directory(path=DATA_FILE) -> CommuneDirectory:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        communes = [
            Commune(
                insee_code=row["insee_code"],
                name=row["name"],
                siren=row["siren"],
                department_code=row["department_code"],
                department=row["department"],
                region=row["region"],
                population=int(row["population"] or 0),
                postal_codes=tuple(row["postal_codes"].split()),
                epci_siren=row["epci_siren"] or None,
                epci_name=row["epci_name"] or None,
                latitude=_float(row["latitude"]),
                longitude=_float(row["longitude"]),
                coord_source=row["coord_source"] or None,
            )
            for row in csv.DictReader(f)
        ]
    return CommuneDirectory(communes)


@cache
def communes() -> CommuneDirectory:
    """The process-wide directory, loaded on first use."""
    return load_directory()
