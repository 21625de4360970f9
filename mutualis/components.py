"""The processes that make up Mutualis: each component's service class and settings."""

from importlib import import_module

COMPONENTS: dict[str, str] = {
    # name -> package holding service.py (class Service) and settings.py (class Settings)
    "gateway": "gateway",
    "listings": "services.listings",
    "bookings": "services.bookings",
    "consultants": "services.consultants",
    "billing": "services.billing",
    "notifications": "services.notifications",
}
SERVICES = [name for name in COMPONENTS if name != "gateway"]
# the components with an outbox, each published by its relay (`mutualis relay <name>`): the
# gateway announces users (contracts.users)
RELAYED = [*SERVICES, "gateway"]


def settings_of(name: str):
    return import_module(f"{COMPONENTS[name]}.settings").Settings()


def service_class(name: str):
    return import_module(f"{COMPONENTS[name]}.service").Service
