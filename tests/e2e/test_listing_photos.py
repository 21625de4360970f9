"""A listing's contact, pick-up details and photos through the gateway, every service a
process: a photo uploaded is re-encoded and stored, served with the headers of immutable
content (ETag, 304), shown by the listing; a loan's condition photographed at hand-over, by
API and from the booking's page; bad uploads (too large 413, no image 422, another commune's
listing 404, a bomb, too early 409) leave nothing stored: neither rows nor files."""

from __future__ import annotations

import io
import struct
import uuid
import zlib

import requests
from PIL import Image

from tests.support import assert_problem, day

OWNER = "42044"
NEIGHBOUR = "42218"
TABLES = ("listings", "listing_photos", "outbox")


def photo_bytes(kind: str = "JPEG", size=(1600, 1200)) -> bytes:
    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x013B] = "Agent du parc"
    Image.new("RGB", size, (30, 90, 160)).save(out, kind, exif=exif)
    return out.getvalue()


def bomb() -> bytes:
    small = io.BytesIO()
    Image.new("L", (1, 1)).save(small, "PNG")
    raw = small.getvalue()
    header = b"IHDR" + struct.pack(">II", 60_000, 60_000) + raw[24:29]
    return raw[:12] + header + struct.pack(">I", zlib.crc32(header)) + raw[33:]


def publish(stack) -> dict:
    answer = stack.session("manager", OWNER).post(
        f"{stack.url}/api/v1/listings",
        json={
            "title": f"Tribune mobile {uuid.uuid4().hex[:8]}",
            "category": "evenementiel",
            "kind": "equipment",
            "pricing_unit": "day",
            "rate_cents": 18000,
            "contact": {"name": "Sophie Garnier", "phone": "04 77 40 12 34"},
            "pickup_address": "Atelier municipal, 3 rue Jean Jaurès",
            "pickup_instructions": "Quai de chargement, côté parking",
        },
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def stored_files(stack) -> list[str]:
    root = stack.workdir / "storage"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_a_photo_is_uploaded_served_cached_and_removed(stack):
    listing = publish(stack)
    assert listing["contact"]["phone"] == "+33477401234"
    manager = stack.session("manager", OWNER)
    upload = f"{stack.url}/api/v1/listings/{listing['id']}/photos"

    added = manager.post(
        upload, data=photo_bytes(), headers={"Content-Type": "image/jpeg"}, timeout=30
    )
    assert added.status_code == 201, added.text
    photo = added.json()
    assert (photo["width"], photo["height"]) == (1600, 1200)
    # the same image again, as a browser's form sends it: the photo already there
    again = manager.post(
        upload, files={"file": ("tribune.jpg", photo_bytes(), "image/jpeg")}, timeout=30
    )
    assert again.status_code == 200 and again.json()["id"] == photo["id"]

    shown = stack.session("agent", NEIGHBOUR).get(
        f"{stack.url}/api/v1/listings/{listing['id']}", timeout=10
    )
    assert [p["id"] for p in shown.json()["photos"]] == [photo["id"]]

    # served without a token, cacheable forever, its digest the ETag
    thumbnail = stack_get(stack, photo["thumbnail_url"])
    assert thumbnail.status_code == 200
    assert thumbnail.headers["Content-Type"] == "image/jpeg"
    assert thumbnail.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert thumbnail.headers["X-Content-Type-Options"] == "nosniff"
    small = Image.open(io.BytesIO(thumbnail.content))
    assert max(small.size) == 480 and dict(small.getexif()) == {}
    etag = thumbnail.headers["ETag"]
    cached = stack_get(stack, photo["thumbnail_url"], {"If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b""
    full = stack_get(stack, photo["url"])
    assert b"Agent du parc" not in full.content and full.headers["ETag"] != etag

    removed = manager.delete(f"{upload}/{photo['id']}", timeout=10)
    assert removed.status_code == 204
    assert stack_get(stack, photo["url"]).status_code == 404
    assert not [f for f in stored_files(stack) if listing["id"] in f]


def stack_get(stack, path: str, headers: dict | None = None):
    """A GET with no token, as an <img> or a mail client fetches."""
    return requests.get(f"{stack.url}{path}", headers=headers or {}, timeout=10)


def test_bad_uploads_store_nothing(stack):
    listing = publish(stack)
    upload = f"{stack.url}/api/v1/listings/{listing['id']}/photos"
    manager = stack.session("manager", OWNER)
    before = stack.row_counts("listings", TABLES), stored_files(stack)

    too_large = manager.post(
        upload,
        data=b"\xff\xd8\xff" + b"\0" * (10 * 2**20 + 1),
        headers={"Content-Type": "image/jpeg"},
        timeout=60,
    )
    assert_problem(too_large, 413)
    pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
    not_an_image = manager.post(
        upload, files={"file": ("photo.jpg", pdf, "image/jpeg")}, timeout=30
    )
    assert_problem(not_an_image, 422)
    assert not_an_image.json()["errors"][0]["type"] == "not_an_image"
    image_bomb = manager.post(
        upload, data=bomb(), headers={"Content-Type": "image/png"}, timeout=30
    )
    assert_problem(image_bomb, 422)
    neighbours = stack.session("manager", NEIGHBOUR).post(
        upload, data=photo_bytes("PNG", (40, 30)), headers={"Content-Type": "image/png"}, timeout=30
    )
    assert_problem(neighbours, 404)
    unknown = manager.post(
        f"{stack.url}/api/v1/listings/{uuid.uuid4()}/photos",
        data=photo_bytes("WEBP", (40, 30)),
        headers={"Content-Type": "image/webp"},
        timeout=30,
    )
    assert_problem(unknown, 404)
    not_uuid = manager.post(
        f"{stack.url}/api/v1/listings/..%2F..%2Fetc/photos",
        data=photo_bytes("WEBP", (40, 30)),
        headers={"Content-Type": "image/webp"},
        timeout=30,
    )
    assert not_uuid.status_code == 404
    agent = stack.session("agent", OWNER).post(
        upload, data=photo_bytes("PNG", (40, 30)), headers={"Content-Type": "image/png"}, timeout=30
    )
    assert_problem(agent, 403)
    wrong_type = manager.post(
        upload, data=b"hello", headers={"Content-Type": "text/plain"}, timeout=30
    )
    assert_problem(wrong_type, 415)
    assert (stack.row_counts("listings", TABLES), stored_files(stack)) == before

    for name in ("nope.jpg", "../../gateway.sqlite3", "a" * 64 + ".gif"):
        assert (
            stack_get(stack, f"/api/v1/photos/listings/{listing['id']}/{name}").status_code == 404
        )


def test_the_condition_of_a_loan_is_photographed_at_hand_over_and_return(stack):
    listing = publish(stack)
    stack.known_to_bookings(listing)
    borrower = stack.session("agent", NEIGHBOUR)
    lender = stack.session("manager", OWNER)
    asked = borrower.post(
        f"{stack.url}/api/v1/bookings",
        json={"listing_id": listing["id"], "start": day(20), "end": day(21)},
        timeout=10,
    )
    assert asked.status_code == 201, asked.text
    booking_id = asked.json()["id"]
    photos = f"{stack.url}/api/v1/bookings/{booking_id}/photos"
    jpeg = {"Content-Type": "image/jpeg"}

    # requested only: no photo of its condition yet, and nothing stored
    early = lender.post(photos, params={"stage": "check_out"}, data=photo_bytes(), headers=jpeg)
    assert_problem(early, 409)
    assert not [f for f in stored_files(stack) if booking_id in f]
    approved = lender.post(f"{stack.url}/api/v1/bookings/{booking_id}/approve", timeout=10)
    assert approved.status_code == 200, approved.text

    added = lender.post(
        photos, params={"stage": "check_out"}, data=photo_bytes(), headers=jpeg, timeout=30
    )
    assert added.status_code == 201, added.text
    photo = added.json()
    assert (photo["stage"], photo["added_by_commune"]) == ("check_out", OWNER)
    assert stack_get(stack, photo["thumbnail_url"]).headers["Cache-Control"].endswith("immutable")
    stranger = stack.session("manager", "42095").post(
        photos, params={"stage": "check_out"}, data=photo_bytes("PNG"), headers=jpeg, timeout=30
    )
    assert_problem(stranger, 404)
    not_yet = borrower.post(
        photos, params={"stage": "return"}, data=photo_bytes("PNG"), headers=jpeg, timeout=30
    )
    assert_problem(not_yet, 409)
    no_stage = borrower.post(photos, data=photo_bytes("PNG"), headers=jpeg, timeout=30)
    assert_problem(no_stage, 422)
    assert len([f for f in stored_files(stack) if booking_id in f]) == 2  # photo, thumbnail

    # the borrower's page shows it, and sends its own from the form
    page = stack.web_session(f"agent.{NEIGHBOUR}@mutualis-demo.fr")
    shown = page.get(f"{stack.url}/reservations/{booking_id}", timeout=10)
    assert photo["thumbnail_url"] in shown.text
    assert "Photos de l'état du matériel" in shown.text
    token = shown.text.split('name="csrf" value="')[1].split('"')[0]
    sent = page.post(
        f"{stack.url}/reservations/{booking_id}/photos",
        data={"csrf": token, "etape": "check_out"},
        files={"photo": ("etat.png", photo_bytes("PNG", (300, 200)), "image/png")},
        timeout=30,
        allow_redirects=False,
    )
    assert sent.status_code == 303, sent.text
    assert sent.headers["Location"].endswith("?ok=photo-etat-ajoutee#photos-etat")
    seen = borrower.get(f"{stack.url}/api/v1/bookings/{booking_id}", timeout=10).json()
    assert [(p["stage"], p["added_by_commune"]) for p in seen["condition_photos"]] == [
        ("check_out", OWNER),
        ("check_out", NEIGHBOUR),
    ]
