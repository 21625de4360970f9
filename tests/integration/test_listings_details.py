"""The details that make a loan happen, in the listings service on each database: a contact
(a French number kept in E.164, a checked e-mail), a pick-up address and instructions, and
the photos' metadata (the bytes are the gateway's to store); each in the listing's answers
and in the snapshot its events carry."""

from __future__ import annotations

import hashlib
import json

import pytest
from nameko.testing.services import worker_factory
from sqlalchemy import func, select

from contracts.errors import Conflict, Forbidden, InvalidInput, NotFound
from contracts.listings import MAX_PHOTOS, ListingSnapshot, photo_keys
from infra.database import DatabaseAccess, make_engine
from infra.messaging_tables import outbox
from services.listings.models import ListingRow, PhotoRow
from services.listings.service import Service

MANAGER = {"user_id": "u-manager", "commune": "42218", "roles": ["manager"]}
AGENT = {"user_id": "u-agent", "commune": "42218", "roles": ["agent"]}
NEIGHBOUR = {"user_id": "u-neighbour", "commune": "42095", "roles": ["manager"]}

DRAFT = {
    "title": "Chasse-neige",
    "category": "deneigement",
    "kind": "vehicle",
    "pricing_unit": "day",
    "rate_cents": 42000,
    "contact": {
        "name": "Jean Morel",
        "role": "responsable du parc",
        "phone": "04 77 12 34 56",
        "email": "Parc@Saint-Etienne.fr",
    },
    "pickup_address": "Centre technique municipal, 12 rue de la Forge, Saint-Étienne",
    "pickup_instructions": "Portail B, sonner à l'atelier (7 h 30 – 16 h)",
}


@pytest.fixture
def service(listings_db):
    engine = make_engine(listings_db)
    db = DatabaseAccess(engine, "listings", None, "listings.test")
    yield worker_factory(Service, db=db), engine
    engine.dispose()


def events(engine) -> list[tuple[str, dict]]:
    with engine.connect() as conn:
        rows = conn.execute(select(outbox.c.routing_key, outbox.c.body).order_by(outbox.c.id))
        return [(key, body) for key, body in rows]


def stored(listing_id: str, image: bytes = b"a photo") -> dict:
    digest = hashlib.sha256(image).hexdigest()
    key, thumbnail = photo_keys(listing_id, digest, "jpg")
    return {
        "digest": digest,
        "key": key,
        "thumbnail_key": thumbnail,
        "content_type": "image/jpeg",
        "width": 1200,
        "height": 800,
        "size_bytes": 183_000,
    }


def payload_of(body) -> dict:
    return (json.loads(body) if isinstance(body, (str, bytes)) else body)["payload"]


def test_a_contact_and_pick_up_are_kept_checked_and_announced(service):
    svc, engine = service
    listing = svc.publish(MANAGER, DRAFT)
    assert listing["contact"] == {
        "name": "Jean Morel",
        "role": "responsable du parc",
        "phone": "+33477123456",
        "email": "Parc@saint-etienne.fr",
    }
    assert svc.get(NEIGHBOUR, listing["id"])["pickup_instructions"].startswith("Portail B")
    # a search's items show it too (read as text, decoded apart): nearest first, and not
    for query in ({"near": "42218", "radius_km": 5}, {"q": "chasse-neige"}):
        (item,) = svc.search(NEIGHBOUR, query)["items"]
        assert item["contact"] == listing["contact"], query
    ((key, body),) = events(engine)
    snapshot = ListingSnapshot.model_validate(payload_of(body))
    assert key == "listing.published"
    assert snapshot.contact.phone == "+33477123456"
    assert snapshot.pickup_address.startswith("Centre technique")

    # a bad number changes nothing, and says which field
    with pytest.raises(InvalidInput) as refused:
        svc.update(MANAGER, listing["id"], {"contact": DRAFT["contact"] | {"phone": "12 34"}})
    assert refused.value.errors[0]["field"] == "contact.phone"
    with pytest.raises(InvalidInput):
        svc.update(MANAGER, listing["id"], {"contact": {"name": "Jean Morel"}})  # no way to call
    assert svc.get(MANAGER, listing["id"])["revision"] == 1

    # the contact removed: null
    edited = svc.update(MANAGER, listing["id"], {"contact": None, "pickup_address": "Mairie"})
    assert edited["contact"] is None and edited["pickup_address"] == "Mairie"
    assert svc.search(AGENT, {"near": "42218"})["items"][0]["contact"] is None
    assert edited["pickup_instructions"] == DRAFT["pickup_instructions"]


def test_snapshots_written_before_contacts_and_photos_still_parse():
    old = {
        "listing_id": "7c6f3a52-0000-4000-8000-000000000001",
        "owner_commune": "42218",
        "status": "published",
        "revision": 4,
        "title": "Chasse-neige",
        "category": "deneigement",
        "kind": "vehicle",
        "pricing_unit": "day",
        "rate_cents": 42000,
    }
    snapshot = ListingSnapshot.model_validate(old)
    assert snapshot.contact is None and snapshot.pickup_address == "" and snapshot.photos == []


def test_photos_are_the_owners_managers_to_add_and_remove(service):
    svc, engine = service
    listing = svc.publish(MANAGER, DRAFT)
    added = svc.add_photo(MANAGER, listing["id"], stored(listing["id"]))
    assert added["new"] is True
    photo = added["photo"]
    assert (
        photo["url"]
        == f"/api/v1/photos/listings/{listing['id']}/" + stored(listing["id"])["digest"] + ".jpg"
    )
    shown = svc.get(NEIGHBOUR, listing["id"])
    assert [p["id"] for p in shown["photos"]] == [photo["id"]]
    assert shown["revision"] == 2
    key, body = events(engine)[-1]
    assert key == "listing.updated"
    assert payload_of(body)["photos"][0]["thumbnail_url"] == photo["thumbnail_url"]

    # the same image again is the same photo: no second row, no new revision
    again = svc.add_photo(MANAGER, listing["id"], stored(listing["id"]))
    assert again == {"photo": photo, "new": False}
    assert svc.get(MANAGER, listing["id"])["revision"] == 2

    # another commune's manager finds no such listing to change; an agent may not
    with pytest.raises(NotFound):
        svc.add_photo(NEIGHBOUR, listing["id"], stored(listing["id"], b"other"))
    with pytest.raises(NotFound):
        svc.remove_photo(NEIGHBOUR, listing["id"], photo["id"])
    with pytest.raises(Forbidden):
        svc.add_photo(AGENT, listing["id"], stored(listing["id"], b"other"))
    # keys under another listing's prefix are refused: removing would delete its bytes
    elsewhere = stored("7c6f3a52-0000-4000-8000-000000000001", b"other")
    with pytest.raises(InvalidInput):
        svc.add_photo(MANAGER, listing["id"], elsewhere)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(PhotoRow)) == 1

    removed = svc.remove_photo(MANAGER, listing["id"], photo["id"])
    assert removed["keys"] == [stored(listing["id"])["key"], stored(listing["id"])["thumbnail_key"]]
    assert svc.get(MANAGER, listing["id"])["photos"] == []
    with pytest.raises(NotFound):
        svc.remove_photo(MANAGER, listing["id"], photo["id"])
    with engine.connect() as conn:
        assert conn.scalar(select(ListingRow.revision)) == 3


def test_a_listing_shows_a_bounded_number_of_photos(service):
    svc, _ = service
    listing = svc.publish(MANAGER, DRAFT)
    for n in range(MAX_PHOTOS):
        svc.add_photo(MANAGER, listing["id"], stored(listing["id"], b"photo %d" % n))
    with pytest.raises(Conflict):
        svc.add_photo(MANAGER, listing["id"], stored(listing["id"], b"one too many"))
    assert len(svc.get(MANAGER, listing["id"])["photos"]) == MAX_PHOTOS


def test_the_migrated_listings_schema_has_the_photos_and_details_the_models_say(listings_db):
    from services.listings.models import metadata
    from tests.support.schema import differences

    mine = {"listing_photos", "contact", "pickup_address", "pickup_instructions"}
    found = differences(listings_db, metadata)
    assert [d for d in found if any(name in repr(d) for name in mine)] == []
