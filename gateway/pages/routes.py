"""Every web page of the gateway, one mixin per area; gateway.service adds PageRoutes."""

from gateway.pages.account import AccountPages
from gateway.pages.accounting import AccountingPages
from gateway.pages.activity import ActivityPages
from gateway.pages.agreements import AgreementPages
from gateway.pages.assets import StaticFiles
from gateway.pages.bookings import BookingPages
from gateway.pages.catalogue import CataloguePages
from gateway.pages.emergencies import EmergencyPages
from gateway.pages.experts import ExpertPages
from gateway.pages.finances import FinancePages
from gateway.pages.mails import MailPages
from gateway.pages.notifications import NotificationPages
from gateway.pages.operations import OperationPages
from gateway.pages.photos import PhotoPages


class PageRoutes(
    AccountPages,
    CataloguePages,
    BookingPages,
    ExpertPages,
    FinancePages,
    AccountingPages,
    ActivityPages,
    EmergencyPages,
    AgreementPages,
    OperationPages,
    NotificationPages,
    PhotoPages,
    MailPages,
    StaticFiles,
):
    """The pages: account and dashboard, catalogue and listings, bookings, experts and
    missions, finances and the activity report, emergency episodes, agreements and council
    decisions, the operator's queues,
    notification preferences and (in demo mode) the mails sent."""
