"""Bookings routes: request, decide, move, hand over, return, list, and the iCalendar feed."""

from werkzeug.wrappers import Response

from contracts.bookings import (
    Answer,
    BookingCreated,
    BookingPage,
    BookingQuery,
    BookingQuote,
    BookingRequest,
    BookingView,
    Condition,
    NewDates,
    ReturnReport,
)
from contracts.caller import Caller, Role
from contracts.errors import InvalidInput, NotFound, Unavailable
from contracts.fields import Reason, RequiredReason
from gateway.http import api
from gateway.routes import as_rpc, query_dict
from gateway.rpc import ServiceRpc

BOOKINGS = "Bookings"
PARTIES = (Role.AGENT, Role.MANAGER)
# bookings learns a published listing from its event, some 50 ms later: retry after this
LEARNING_SECONDS = 1


def names_unknown_listing(exc: InvalidInput) -> bool:
    return any(error.get("type") == "unknown_listing" for error in exc.errors)


class BookingRoutes:
    bookings = ServiceRpc("bookings")
    listings = ServiceRpc("listings")

    def _asked(self, method: str, caller: Caller, body: BookingRequest):
        """A request or quote; when bookings knows no such listing but listings has it
        (published a moment ago, its event still on the way), a 503 to retry rather than a
        422 that looks final."""
        try:
            return getattr(self.bookings, method)(as_rpc(caller), body.model_dump(mode="json"))
        except InvalidInput as exc:
            if not names_unknown_listing(exc):
                raise
            try:
                self.listings.get(as_rpc(caller), body.listing_id)
            except (NotFound, InvalidInput):  # no such listing for the caller either
                raise exc from None
            raise Unavailable(
                "The bookings service has not learned this listing yet: retry in a moment",
                retry_after_seconds=LEARNING_SECONDS,
            ) from None

    @api(
        "POST",
        "/api/v1/bookings",
        body=BookingRequest,
        response=BookingCreated,
        status=201,
        roles=PARTIES,
        idempotent=True,
        tag=BOOKINGS,
        summary="Request a booking (or a daily/weekly series) of another commune's listing",
        description="409 with the conflicting period when the slot is taken or closed, "
        "unless `wait_if_taken` puts the request on the slot's waitlist; 422 "
        "when the listing's rules are broken or no listing has this id; 503 with "
        "`Retry-After` for a listing published a moment ago that bookings has not learned "
        "yet.",
    )
    def request_booking(self, request, caller: Caller, body: BookingRequest):
        return self._asked("request", caller, body)

    @api(
        "POST",
        "/api/v1/bookings/quote",
        body=BookingRequest,
        response=BookingQuote,
        roles=PARTIES,
        tag=BOOKINGS,
        summary="The quote of a request and what would refuse it, without booking anything",
    )
    def quote_booking(self, request, caller: Caller, body: BookingRequest):
        return self._asked("quote", caller, body)

    @api(
        "GET",
        "/api/v1/bookings",
        query=BookingQuery,
        response=BookingPage,
        tag=BOOKINGS,
        summary="The caller's commune's bookings, as borrower or lender",
    )
    def list_bookings(self, request, caller: Caller, query: BookingQuery):
        return self.bookings.list_bookings(as_rpc(caller), query_dict(query))

    @api(
        "GET",
        "/api/v1/bookings.ics",
        tag=BOOKINGS,
        produces="text/calendar",
        summary="iCalendar feed of the caller's commune's bookings",
    )
    def bookings_calendar(self, request, caller: Caller):
        feed = self.bookings.calendar(as_rpc(caller))
        return Response(
            feed,
            mimetype="text/calendar",
            headers={"Content-Disposition": 'inline; filename="mutualis.ics"'},
        )

    @api(
        "GET",
        "/api/v1/bookings/<booking_id>",
        response=BookingView,
        tag=BOOKINGS,
        summary="One booking with its history (only the two communes concerned)",
    )
    def get_booking(self, request, caller: Caller, booking_id: str):
        return self.bookings.get(as_rpc(caller), booking_id)

    @api(
        "POST",
        "/api/v1/bookings/<booking_id>/approve",
        response=BookingView,
        roles=(Role.MANAGER,),
        idempotent=True,
        tag=BOOKINGS,
        summary="The lender's manager approves a request",
    )
    def approve_booking(self, request, caller: Caller, booking_id: str):
        return self.bookings.approve(as_rpc(caller), booking_id)

    @api(
        "POST",
        "/api/v1/bookings/<booking_id>/reject",
        body=RequiredReason,
        response=BookingView,
        roles=(Role.MANAGER,),
        idempotent=True,
        tag=BOOKINGS,
        summary="The lender's manager rejects a request, with a reason",
    )
    def reject_booking(self, request, caller: Caller, booking_id: str, body: RequiredReason):
        return self.bookings.reject(as_rpc(caller), booking_id, body.model_dump())

    @api(
        "POST",
        "/api/v1/bookings/<booking_id>/cancel",
        body=Reason,
        response=BookingView,
        roles=PARTIES,
        idempotent=True,
        tag=BOOKINGS,
        summary="Either side cancels before check-out; late cancellation may carry a fee",
    )
    def cancel_booking(self, request, caller: Caller, booking_id: str, body: Reason):
        return self.bookings.cancel(as_rpc(caller), booking_id, body.model_dump())

    @api(
        "POST",
        "/api/v1/bookings/<booking_id>/reschedule",
        body=NewDates,
        response=BookingView,
        roles=PARTIES,
        idempotent=True,
        tag=BOOKINGS,
        summary="New dates: the borrower edits its request, the lender's manager moves an "
        "approved loan before hand-over",
        description="Same listing, quantity and operator; the status is kept. The listing's "
        "rules apply as to a request (the lead time is waived when the lender moves it); the "
        "quote follows the dates at the rates agreed. 409 with the conflicting period when "
        "the new slot is taken or closed (the booking's own hold does not count), 422 for "
        "broken rules or the same dates, 403 for the wrong side (a request is the borrower's "
        "to edit, an approved loan the lender's manager's to move), 409 once handed over. "
        "The other side is told (`booking.rescheduled`), with the calendar invitation "
        "updated for an approved loan. When the lender moves an approved loan to dates that "
        "cost the borrower more, the move is only proposed: 200 with the booking at its "
        "current dates and quote and `proposal` (the new dates, their quote, who proposed, "
        "why, when), which the borrower's manager accepts or declines; a new proposal "
        "replaces a pending one.",
    )
    def reschedule_booking(self, request, caller: Caller, booking_id: str, body: NewDates):
        return self.bookings.reschedule(as_rpc(caller), booking_id, body.model_dump(mode="json"))

    @api(
        "POST",
        "/api/v1/bookings/<booking_id>/reschedule/accept",
        response=BookingView,
        roles=(Role.MANAGER,),
        idempotent=True,
        tag=BOOKINGS,
        summary="The borrower's manager accepts the new dates its lender proposed",
        description="The rules and the slot are checked again now (the proposed slot is not "
        "held meanwhile): 409 with the conflicting period if it was taken since, 409 when "
        "nothing is proposed or the proposal lapsed (the loan started, was handed over, "
        "cancelled or moved since). Then the loan moves and is re-priced as a move by the "
        "lender would be (`booking.rescheduled`, calendar invitation, waitlist).",
    )
    def accept_new_dates(self, request, caller: Caller, booking_id: str):
        return self.bookings.accept_dates(as_rpc(caller), booking_id)

    @api(
        "POST",
        "/api/v1/bookings/<booking_id>/reschedule/decline",
        body=Answer,
        response=BookingView,
        roles=(Role.MANAGER,),
        idempotent=True,
        tag=BOOKINGS,
        summary="The borrower's manager declines the new dates its lender proposed",
        description="The loan keeps its dates and quote; the lender's managers are told, "
        "with the reason. 409 when nothing is proposed or the proposal lapsed.",
    )
    def decline_new_dates(self, request, caller: Caller, booking_id: str, body: Answer):
        return self.bookings.decline_dates(as_rpc(caller), booking_id, body.model_dump())

    @api(
        "POST",
        "/api/v1/bookings/<booking_id>/reschedule/withdraw",
        response=BookingView,
        roles=(Role.MANAGER,),
        idempotent=True,
        tag=BOOKINGS,
        summary="The lender's manager withdraws the new dates it proposed",
    )
    def withdraw_new_dates(self, request, caller: Caller, booking_id: str):
        return self.bookings.withdraw_dates(as_rpc(caller), booking_id)

    @api(
        "POST",
        "/api/v1/bookings/<booking_id>/check-out",
        body=Condition,
        response=BookingView,
        roles=(Role.MANAGER,),
        idempotent=True,
        tag=BOOKINGS,
        summary="The lender hands the item over, noting its condition",
    )
    def check_out_booking(self, request, caller: Caller, booking_id: str, body: Condition):
        return self.bookings.check_out(as_rpc(caller), booking_id, body.model_dump())

    @api(
        "POST",
        "/api/v1/bookings/<booking_id>/return",
        body=ReturnReport,
        response=BookingView,
        roles=(Role.MANAGER,),
        idempotent=True,
        tag=BOOKINGS,
        summary="The lender records the return, its condition and damages (what is charged)",
    )
    def return_booking(self, request, caller: Caller, booking_id: str, body: ReturnReport):
        return self.bookings.return_(as_rpc(caller), booking_id, body.model_dump(mode="json"))
