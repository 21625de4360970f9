"""The catalogue: search around my commune (with a small map of where the results are), a
listing's page with its calendar and booking form, and managers' publishing and editing."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from pydantic import ValidationError

from contracts.caller import Role
from contracts.clock import PARIS, now, paris_today
from contracts.errors import ServiceError, field_errors
from contracts.listings import (
    CATEGORIES,
    ListingChanges,
    ListingDraft,
    ListingQuery,
    phone_national,
)
from gateway.errors import status_of
from gateway.pages import french
from gateway.pages.calendar import month_grid, month_window, parse_month, shift_month
from gateway.pages.drawing import Place, map_picture
from gateway.pages.entrypoint import Page, PageProblem, Web, commune_name, go, page
from gateway.pages.forms import (
    FormError,
    booking_period,
    cents_from_euros,
    day,
    euros_from_cents,
    instant,
    preview_from_quote,
    whole_number,
)
from gateway.pages.photos import PHOTO_FORM_BYTES, refused, uploaded_photo
from gateway.photos import add_listing_photo, remove_listing_photo
from gateway.routes import as_rpc
from gateway.rpc import ServiceRpc
from infra.communes import communes, great_circle_km

RADII_KM = (10, 20, 30, 50, 100)
PAGE_SIZE = 20
# the paging arguments of links made before keyset cursors
OLD_PAGING = ("offset", "page")


def refuses_cursor(exc: ServiceError) -> bool:
    """The search refused only its cursor (edited, of another search, or from before keyset
    paging)."""
    fields = [e.get("field") for e in exc.errors]
    return exc.code == "invalid_input" and fields == ["cursor"]


FULL_LISTING = "L'annonce a déjà 12 photos, ou elle est retirée : retirez-en une d'abord."
# the page's sort -> the API's
SORTS = {"distance": "distance", "prix": "price", "disponibilite": "available"}
PARTIES = (Role.AGENT, Role.MANAGER)


def _period(value: str) -> datetime:
    return datetime.fromisoformat(value)


def first_offered(listing: dict) -> tuple[date, int]:
    """The day (and, for hour listings, the hour) the booking form offers first: today when
    the listing needs no notice, from the current hour in Paris (8:00 at the earliest);
    tomorrow at 8:00 when the shortest booking no longer fits in today."""
    today = paris_today()
    start = today + timedelta(days=listing["lead_time_days"])
    if listing["pricing_unit"] != "hour" or start > today:
        return start, 8
    hour = max(8, now().astimezone(PARIS).hour)
    if hour + max(listing["min_duration"], 1) > 23:  # the form's hours end by 23:00
        return today + timedelta(days=1), 8
    return start, hour


def results_map(home_code: str, items: list[dict], facets: dict | None, query: dict):
    """The map of where the results are: every result's commune when the search counted
    them (facets), else the page's."""
    home = communes().get(home_code)
    if home is None or home.latitude is None:
        return None
    if facets is not None:
        counts = facets["owner_commune"]
    else:
        counts = {}
        for item in items:
            counts[item["owner_commune"]] = counts.get(item["owner_commune"], 0) + 1
    places = []
    for code, count in counts.items():
        commune = communes().get(code)
        if commune is None or commune.latitude is None:
            continue
        distance = great_circle_km(
            home.latitude, home.longitude, commune.latitude, commune.longitude
        )
        places.append(
            Place(commune.name, commune.latitude, commune.longitude, count, distance, code)
        )
    return map_picture((home.latitude, home.longitude), places, radius_km=query.get("radius_km"))


class CataloguePages:
    listings = ServiceRpc("listings")
    bookings = ServiceRpc("bookings")

    # -- search -----------------------------------------------------------------------

    @page("GET", "/catalogue")
    def catalogue_page(self, request, web: Web):
        visitor = web.visitor
        asked = {
            "q": web.arg("q"),
            "categorie": web.arg("categorie"),
            "type": web.arg("type"),
            "du": web.arg("du"),
            "au": web.arg("au"),
            "rayon": web.arg("rayon", "30"),
            "tarif_max": web.arg("tarif_max"),
            "tri": web.arg("tri", "distance"),
            "commune": web.arg("commune"),
        }
        if asked["commune"] and communes().get(asked["commune"]) is None:
            asked["commune"] = ""
        if asked["tri"] not in SORTS:
            asked["tri"] = "distance"
        cursor, first_rank = web.arg("suite"), web.arg("rang", "1")
        query: dict = {
            "near": visitor.commune,
            "limit": PAGE_SIZE,
            "sort": SORTS[asked["tri"]],
            "count": True,
        }
        if cursor:
            query["cursor"] = cursor
        if asked["commune"]:
            query["owner"] = asked["commune"]
        errors: dict[str, list[str]] = {}
        try:
            query["radius_km"] = float(asked["rayon"] or 30)
            if asked["q"]:
                query["q"] = asked["q"]
            if asked["categorie"]:
                query["category"] = asked["categorie"]
            if asked["type"]:
                query["kind"] = asked["type"]
            first, last = day(asked["du"], "du", False), day(asked["au"], "au", False)
            if (first is None) != (last is None):
                raise FormError("du", "Indiquez les deux dates, ou aucune.")
            if first is not None:
                if last < first:
                    raise FormError("au", "Le dernier jour doit suivre le premier.")
                query["available_from"] = first.isoformat()
                query["available_to"] = last.isoformat()
            rate = cents_from_euros(asked["tarif_max"], "tarif_max", required=False)
            if rate is not None:
                query["max_rate_cents"] = rate
            ListingQuery.model_validate(query)
        except FormError as exc:
            errors[exc.field] = [exc.message]
        except (ValueError, ValidationError) as exc:
            if isinstance(exc, ValidationError):
                errors = french.errors_by_field(field_errors(exc))
            else:
                errors["rayon"] = ["Indiquez un rayon en kilomètres."]
        result: dict = {"items": [], "next_cursor": None, "count": 0, "count_exact": True}
        # a link from before keyset cursors (?offset=, ?page=, or an offset cursor 'o:20'):
        # the first page, saying so, rather than a refusal (the API stays strict)
        stale_link = not cursor and any(web.arg(old) for old in OLD_PAGING)
        if not errors:
            try:
                result = self.listings.search(as_rpc(web.caller), query)
            except ServiceError as exc:
                if not (cursor and refuses_cursor(exc)):
                    raise
                del query["cursor"]
                first_rank, stale_link = "1", True
                result = self.listings.search(as_rpc(web.caller), query)
        items = result["items"]
        picture = results_map(visitor.commune, items, result.get("facets"), query)
        return Page(
            "catalogue.html",
            {
                "asked": asked,
                "errors": errors,
                "items": items,
                "count": result["count"],
                "count_exact": result["count_exact"],
                "first_rank": int(first_rank) if first_rank.isdigit() else 1,
                "next_cursor": result["next_cursor"],
                "stale_link": stale_link,
                "paging": {k: v for k, v in asked.items() if v},
                "sorts": {
                    "distance": "Les plus proches",
                    "prix": "Les moins chers",
                    "disponibilite": "Disponibilité",
                },
                "picture": picture,
                "facets": result.get("facets"),
                "communes_found": [
                    (code, commune_name(code), n)
                    for code, n in (result.get("facets") or {}).get("owner_commune", {}).items()
                ],
                "categories": CATEGORIES,
                "kinds": french.KINDS,
                "radii": RADII_KM,
            },
        )

    @page("GET", "/annonces")
    def my_listings_page(self, request, web: Web):
        found = self.listings.search(
            as_rpc(web.caller), {"owner": web.visitor.commune, "limit": 100}
        )["items"]
        return Page("my_listings.html", {"items": found, "categories": CATEGORIES})

    # -- one listing ------------------------------------------------------------------

    @page("GET", "/annonces/<listing_id>")
    def listing_page(self, request, web: Web, listing_id: str):
        return self._listing(web, listing_id, {}, None, [], {})

    @page("POST", "/annonces/<listing_id>/reserver", roles=PARTIES)
    def booking_submit(self, request, web: Web, listing_id: str):
        listing = self.listings.get(as_rpc(web.caller), listing_id)
        form = {k: web.form.get(k, "") for k in BOOKING_FIELDS}
        errors: dict[str, list[str]] = {}
        try:
            start, end = booking_period(listing["pricing_unit"], form)
            quantity = whole_number(form["quantite"], "quantity", default=1)
        except FormError as exc:
            errors[exc.field] = [exc.message]
            return self._listing(web, listing_id, form, None, [], errors, status=422)
        with_operator = form["chauffeur"] == "oui"
        request_body = {
            "listing_id": listing_id,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "quantity": quantity,
            "purpose": form["objet"],
            "with_operator": with_operator,
            "wait_if_taken": form["attente"] == "oui",
        }
        if form["engagement"]:
            request_body["order_reference"] = form["engagement"]
        if web.form.get("action") != "envoyer":
            try:
                answer = self.bookings.quote(as_rpc(web.caller), request_body)
            except ServiceError as exc:
                if exc.code in ("conflict", "invalid_input"):
                    refusal = french.explain_refusal(exc)
                    return self._listing(web, listing_id, form, None, refusal, {}, status=422)
                raise
            return self._listing(web, listing_id, form, preview_from_quote(answer), [], {})
        try:
            created = self.bookings.request(as_rpc(web.caller), request_body)
        except ServiceError as exc:
            if exc.code in ("conflict", "invalid_input"):
                refusal = french.explain_refusal(exc)
                return self._listing(
                    web, listing_id, form, None, refusal, {}, status=status_of(exc)
                )
            raise
        notice = "liste-attente" if created["status"] == "waiting" else "demande-envoyee"
        return go(f"/reservations/{created['id']}", notice)

    def _listing(
        self,
        web: Web,
        listing_id: str,
        form: dict,
        preview,
        refusal: list[str],
        errors: dict,
        status: int = 200,
    ) -> Page:
        caller = as_rpc(web.caller)
        listing = self.listings.get(caller, listing_id)
        today = paris_today()
        year, month = parse_month(web.arg("mois"), today)
        first, last = month_window(year, month)
        window = self.listings.availability(caller, listing_id, first.isoformat(), last.isoformat())
        busy = [(_period(p["start"]), _period(p["end"])) for p in window["busy"]]
        closed = [
            (_period(b["start"]), _period(b["end"]), b["reason"]) for b in listing["blackouts"]
        ]
        weeks = month_grid(year, month, busy, closed, today)
        owner = listing["owner_commune"] == web.visitor.commune
        prev_y, prev_m = shift_month(year, month, -1)
        next_y, next_m = shift_month(year, month, 1)
        if not form:
            start, hour = first_offered(listing)
            length = max(listing["min_duration"], 1)
            form = {k: "" for k in BOOKING_FIELDS} | {
                "du": start.isoformat(),
                "au": (start + timedelta(days=length - 1)).isoformat(),
                "jour": start.isoformat(),
                "heure_debut": f"{hour:02d}:00",
                "heure_fin": f"{hour + length:02d}:00",
                "quantite": "1",
            }
        return Page(
            "listing.html",
            {
                "listing": listing,
                "category": CATEGORIES.get(listing["category"], listing["category"]),
                "weeks": weeks,
                "month_title": french.month_title(year, month),
                "prev_month": f"{prev_y}-{prev_m:02d}",
                "next_month": f"{next_y}-{next_m:02d}",
                "owner": owner,
                "may_book": not owner
                and listing["status"] == "published"
                and web.visitor.has(*PARTIES),
                "may_manage": owner and web.visitor.has(Role.MANAGER),
                "form": form,
                "preview": preview,
                "refusal": refusal,
                "errors": errors,
                "today": today.isoformat(),
            },
            status,
        )

    # -- publishing -------------------------------------------------------------------

    @page("GET", "/annonces/nouvelle", roles=(Role.MANAGER,))
    def new_listing_page(self, request, web: Web):
        return Page("listing_form.html", self._form_context(None, LISTING_DEFAULTS, {}))

    @page("POST", "/annonces/nouvelle", roles=(Role.MANAGER,))
    def new_listing_submit(self, request, web: Web):
        values = {k: web.form.get(k, "") for k in LISTING_FIELDS}
        try:
            draft = listing_terms(values)
            ListingDraft.model_validate(draft)
            created = self.listings.publish(as_rpc(web.caller), draft)
        except FormError as exc:
            return self._form_page(None, values, {exc.field: [exc.message]})
        except ValidationError as exc:
            return self._form_page(None, values, form_errors(field_errors(exc)))
        except ServiceError as exc:
            if exc.code != "invalid_input":
                raise
            return self._form_page(None, values, form_errors(exc.errors))
        return go(f"/annonces/{created['id']}", "annonce-publiee")

    @page("GET", "/annonces/<listing_id>/modifier", roles=(Role.MANAGER,))
    def edit_listing_page(self, request, web: Web, listing_id: str):
        listing = self._own_listing(web, listing_id)
        return Page("listing_form.html", self._form_context(listing, form_values(listing), {}))

    @page("POST", "/annonces/<listing_id>/modifier", roles=(Role.MANAGER,))
    def edit_listing_submit(self, request, web: Web, listing_id: str):
        listing = self._own_listing(web, listing_id)
        values = {k: web.form.get(k, "") for k in LISTING_FIELDS}
        try:
            changes = listing_terms(values)
            ListingChanges.model_validate(changes)
            self.listings.update(as_rpc(web.caller), listing_id, changes)
        except FormError as exc:
            return self._form_page(listing, values, {exc.field: [exc.message]})
        except ValidationError as exc:
            return self._form_page(listing, values, form_errors(field_errors(exc)))
        except ServiceError as exc:
            if exc.code != "invalid_input":
                raise
            return self._form_page(listing, values, form_errors(exc.errors))
        return go(f"/annonces/{listing_id}", "annonce-modifiee")

    @page("POST", "/annonces/<listing_id>/fermetures", roles=(Role.MANAGER,))
    def blackout_submit(self, request, web: Web, listing_id: str):
        self._own_listing(web, listing_id)
        try:
            first = day(web.form.get("du"), "start")
            last = day(web.form.get("au"), "end")
            if last < first:
                raise FormError("end", "Le dernier jour doit suivre le premier.")
        except FormError as exc:
            raise PageProblem(422, f"Fermeture : {exc.message}") from None
        self.listings.add_blackout(
            as_rpc(web.caller),
            listing_id,
            {
                "start": instant(first).isoformat(),
                "end": instant(last + timedelta(days=1)).isoformat(),
                "reason": (web.form.get("motif") or "").strip()[:500],
            },
        )
        return go(f"/annonces/{listing_id}?mois={first:%Y-%m}", "fermeture-ajoutee")

    @page(
        "POST",
        "/annonces/<listing_id>/photos",
        roles=(Role.MANAGER,),
        max_body_bytes=PHOTO_FORM_BYTES,
    )
    def photo_submit(self, request, web: Web, listing_id: str):
        back = f"/annonces/{listing_id}#photos"
        raw = uploaded_photo(web, back)
        try:
            add_listing_photo(self.listings, as_rpc(web.caller), listing_id, raw)
        except ServiceError as exc:
            raise refused(exc, back, FULL_LISTING) from None
        return go(back, "photo-ajoutee")

    @page("POST", "/annonces/<listing_id>/photos/<photo_id>/retirer", roles=(Role.MANAGER,))
    def photo_remove_submit(self, request, web: Web, listing_id: str, photo_id: str):
        remove_listing_photo(self.listings, as_rpc(web.caller), listing_id, photo_id)
        return go(f"/annonces/{listing_id}#photos", "photo-retiree")

    @page("POST", "/annonces/<listing_id>/retirer", roles=(Role.MANAGER,))
    def withdraw_submit(self, request, web: Web, listing_id: str):
        self._own_listing(web, listing_id)
        self.listings.withdraw(as_rpc(web.caller), listing_id)
        return go("/annonces", "annonce-retiree")

    def _own_listing(self, web: Web, listing_id: str) -> dict:
        listing = self.listings.get(as_rpc(web.caller), listing_id)
        if listing["owner_commune"] != web.visitor.commune:
            raise PageProblem(
                403, "Seuls les responsables de la commune propriétaire modifient cette annonce."
            )
        return listing

    def _form_context(self, listing: dict | None, values: dict, errors: dict) -> dict:
        return {
            "listing": listing,
            "values": values,
            "errors": errors,
            "categories": CATEGORIES,
            "kinds": french.KINDS,
        }

    def _form_page(self, listing: dict | None, values: dict, errors: dict) -> Page:
        return Page("listing_form.html", self._form_context(listing, values, errors), 422)


BOOKING_FIELDS = (
    "du",
    "au",
    "jour",
    "heure_debut",
    "heure_fin",
    "quantite",
    "chauffeur",
    "objet",
    "engagement",
    "attente",
)
LISTING_FIELDS = (
    "title",
    "description",
    "category",
    "kind",
    "pricing_unit",
    "rate",
    "deposit",
    "quantity",
    "min_duration",
    "max_duration",
    "lead_time_days",
    "with_operator",
    "operator_rate",
    "cancellation_notice_days",
    "late_cancellation_fee",
    "late_fee_per_day",
    "early_pickup",
    "auto_approve_in_emergencies",
    "rules",
    "contact_name",
    "contact_role",
    "contact_phone",
    "contact_email",
    "pickup_address",
    "pickup_instructions",
)
CONTACT_FIELDS = ("name", "role", "phone", "email")
LISTING_DEFAULTS = {k: "" for k in LISTING_FIELDS} | {
    "pricing_unit": "day",
    "kind": "equipment",
    "quantity": "1",
    "min_duration": "1",
    "lead_time_days": "0",
    "cancellation_notice_days": "0",
    "deposit": "0",
    "operator_rate": "0",
    "late_cancellation_fee": "0",
    "late_fee_per_day": "0",
}


def listing_terms(values: dict) -> dict:
    """The listing form, as the API's ListingDraft fields (amounts in euros -> cents)."""
    terms = {
        "title": values["title"].strip(),
        "description": values["description"].strip(),
        "category": values["category"],
        "kind": values["kind"],
        "pricing_unit": values["pricing_unit"],
        "rate_cents": cents_from_euros(values["rate"], "rate_cents"),
        "deposit_cents": cents_from_euros(values["deposit"], "deposit_cents", False) or 0,
        "quantity": whole_number(values["quantity"], "quantity", 1),
        "min_duration": whole_number(values["min_duration"], "min_duration", 1),
        "max_duration": whole_number(values["max_duration"], "max_duration"),
        "lead_time_days": whole_number(values["lead_time_days"], "lead_time_days", 0),
        "with_operator": values["with_operator"] == "oui",
        "operator_rate_cents": cents_from_euros(
            values["operator_rate"], "operator_rate_cents", False
        )
        or 0,
        "cancellation_notice_days": whole_number(
            values["cancellation_notice_days"], "cancellation_notice_days", 0
        ),
        "late_cancellation_fee_cents": cents_from_euros(
            values["late_cancellation_fee"], "late_cancellation_fee_cents", False
        )
        or 0,
        "late_fee_per_day_cents": cents_from_euros(
            values["late_fee_per_day"], "late_fee_per_day_cents", False
        )
        or 0,
        "early_pickup": values["early_pickup"] == "oui",
        "auto_approve_in_emergencies": values["auto_approve_in_emergencies"] == "oui",
        "rules": values["rules"].strip(),
        "contact": contact_of(values),
        "pickup_address": values["pickup_address"].strip(),
        "pickup_instructions": values["pickup_instructions"].strip(),
    }
    return terms


def contact_of(values: dict) -> dict | None:
    """The form's contact: none when all its fields are left empty."""
    contact = {name: values[f"contact_{name}"].strip() for name in CONTACT_FIELDS}
    if not any(contact.values()):
        return None
    return {name: value for name, value in contact.items() if value or name in ("name", "role")}


def form_errors(errors: list[dict]) -> dict[str, list[str]]:
    """A refusal's errors by the form's fields: the contact's own are its inputs'."""
    renamed = [
        error | {"field": error["field"].replace("contact.", "contact_", 1)}
        if (error.get("field") or "").startswith("contact.")
        else error
        for error in errors
    ]
    return french.errors_by_field(renamed)


def form_values(listing: dict) -> dict:
    contact = listing["contact"] or {}
    return {
        "title": listing["title"],
        "description": listing["description"],
        "category": listing["category"],
        "kind": listing["kind"],
        "pricing_unit": listing["pricing_unit"],
        "rate": euros_from_cents(listing["rate_cents"]),
        "deposit": euros_from_cents(listing["deposit_cents"]),
        "quantity": str(listing["quantity"]),
        "min_duration": str(listing["min_duration"]),
        "max_duration": str(listing["max_duration"] or ""),
        "lead_time_days": str(listing["lead_time_days"]),
        "with_operator": "oui" if listing["with_operator"] else "",
        "operator_rate": euros_from_cents(listing["operator_rate_cents"]),
        "cancellation_notice_days": str(listing["cancellation_notice_days"]),
        "late_cancellation_fee": euros_from_cents(listing["late_cancellation_fee_cents"]),
        "late_fee_per_day": euros_from_cents(listing["late_fee_per_day_cents"]),
        "early_pickup": "oui" if listing["early_pickup"] else "",
        "auto_approve_in_emergencies": "oui" if listing["auto_approve_in_emergencies"] else "",
        "rules": listing["rules"],
        **{f"contact_{name}": (contact.get(name) or "") for name in CONTACT_FIELDS},
        "contact_phone": phone_national(contact["phone"]) if contact.get("phone") else "",
        "pickup_address": listing["pickup_address"],
        "pickup_instructions": listing["pickup_instructions"],
    }
