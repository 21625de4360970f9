"""The web pages' entrypoint: the session cookie, CSRF on every form, security headers (CSP),
errors a person understands, and Jinja2 rendering. Page methods call the services by RPC
with the signed-in user as caller, exactly as the API routes do."""

from __future__ import annotations

import functools
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from eventlet.event import Event
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import escape
from nameko.exceptions import RemoteError
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from contracts.caller import Role
from contracts.clock import paris_today
from contracts.errors import Forbidden, ServiceError
from contracts.french import of_commune, to_commune
from contracts.listings import CATEGORIES, phone_national
from gateway.errors import status_of
from gateway.http import answered_by_the_api, lost_database, request_id_of
from gateway.pages import french
from gateway.pages.navigation import MenuItem, menu
from gateway.pages.sessions import SessionStore, Visitor, same_secret
from infra.communes import communes
from infra.database import service_engine
from infra.metrics import HTTP_DURATION, HTTP_REQUESTS
from infra.web import HttpEntrypoint

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent.parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
LOGIN_PATH = "/connexion"
LOGIN_CSRF_COOKIE = "mutualis_login_csrf"

# No inline script or style anywhere: every script and style sheet is a file under /static.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "geolocation=(), camera=(), microphone=()",
}

# what a redirect after a form may say (?ok=code): fixed sentences, never text from the URL
NOTICES = {
    "connecte": "Vous êtes connecté.",
    "deconnecte": "Vous êtes déconnecté.",
    "demande-envoyee": "Votre demande de réservation est envoyée au prêteur.",
    "liste-attente": "Le créneau est pris : votre demande est en liste d'attente.",
    "approuvee": "La réservation est acceptée.",
    "refusee": "La réservation est refusée ; l'emprunteur verra votre motif.",
    "annulee": "La réservation est annulée.",
    "deplacee": "La réservation est déplacée ; l'emprunteur est prévenu.",
    "dates-modifiees": "Les dates de la demande sont modifiées ; le prêteur est prévenu.",
    "dates-proposees": "Les nouvelles dates coûtent plus à l'emprunteur : elles lui sont "
    "proposées, le prêt garde les siennes jusqu'à son accord.",
    "dates-acceptees": "Les nouvelles dates sont acceptées : le prêt est déplacé.",
    "dates-refusees": "Les nouvelles dates sont refusées ; le prêteur est prévenu.",
    "dates-retirees": "Les nouvelles dates proposées sont retirées.",
    "remise": "La remise est enregistrée.",
    "rendue": "Le retour est enregistré.",
    "annonce-publiee": "L'annonce est publiée.",
    "annonce-modifiee": "L'annonce est modifiée.",
    "annonce-retiree": "L'annonce est retirée : elle ne prend plus de réservations.",
    "fermeture-ajoutee": "La fermeture est enregistrée.",
    "photo-ajoutee": "La photo est ajoutée à l'annonce.",
    "photo-retiree": "La photo est retirée de l'annonce.",
    "photo-etat-ajoutee": "La photo de l'état du matériel est enregistrée.",
    "mission-demandee": "Votre demande de mission est envoyée à la commune de l'expert.",
    "mission-acceptee": "La mission est acceptée.",
    "mission-refusee": "La mission est refusée.",
    "mission-annulee": "La mission est annulée.",
    "mission-terminee": "La mission est terminée.",
    "temps-saisi": "Les jours travaillés sont enregistrés.",
    "temps-approuve": "Les jours travaillés sont approuvés : ils seront facturés.",
    "temps-refuse": "Les jours travaillés sont refusés ; la commune de l'expert verra votre motif.",
    "temps-corrige": "Les jours travaillés sont corrigés : ils sont de nouveau à approuver.",
    "facturation-faite": "La facturation de la période est faite.",
    "paiement-enregistre": "Le paiement est enregistré.",
    "releve-importe": "Le relevé est importé.",
    "paiement-associe": "Le virement est associé à la facture.",
    "paiement-annule": "Le paiement est annulé : la facture doit de nouveau son montant.",
    "ligne-dissociee": "La ligne du relevé est dissociée : elle attend la bonne facture.",
    "mandat-enregistre": "Le mandat de paiement est enregistré : le fournisseur le voit.",
    "imputations-enregistrees": "Les imputations comptables sont enregistrées.",
    "compensation-proposee": (
        "La compensation est proposée : chaque commune concernée doit l'accepter."
    ),
    "compensation-acceptee": "Votre acceptation est enregistrée.",
    "credit-utilise": "Le crédit du client (ses trop-perçus) paie cette facture.",
    "contestation-envoyee": "La contestation est envoyée au fournisseur.",
    "contestation-traitee": "La réponse à la contestation est enregistrée.",
    "compensation-refusee": "La compensation est refusée : rien ne change.",
}


@dataclass
class Page:
    """What a page method returns: a template, its variables and the HTTP status."""

    template: str
    context: dict[str, Any] = field(default_factory=dict)
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Web:
    """What a page method gets besides the request: who looks, what the form sent, and the
    means to sign in and out."""

    request: Request
    visitor: Visitor | None
    form: MultiDict
    sessions: SessionStore
    secure: bool

    @property
    def caller(self):
        assert self.visitor is not None
        return self.visitor.caller

    @property
    def cookie_name(self) -> str:
        # the __Host- prefix pins the cookie to this host and to HTTPS
        return "__Host-mutualis_session" if self.secure else "mutualis_session"

    def arg(self, name: str, default: str = "") -> str:
        return self.request.args.get(name, default).strip()[:500]

    def sign_in(self, user_id: str, target: str) -> Response:
        token = self.sessions.open(user_id)
        response = redirect(safe_target(target), code=303)
        response.set_cookie(
            self.cookie_name,
            token,
            max_age=int(self.sessions.ttl.total_seconds()),
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="Lax",
        )
        response.delete_cookie(LOGIN_CSRF_COOKIE, path=LOGIN_PATH)
        return response

    def sign_out(self) -> Response:
        self.sessions.close_everywhere(self.request.cookies.get(self.cookie_name))
        response = redirect(f"{LOGIN_PATH}?ok=deconnecte", code=303)
        response.delete_cookie(
            self.cookie_name, path="/", secure=self.secure, httponly=True, samesite="Lax"
        )
        return response


def go(path: str, notice: str | None = None) -> Response:
    """303 See Other after a form: the browser loads the page with GET (the notice in the
    query, before any #fragment, which the browser keeps to itself)."""
    path, hash_sign, fragment = path.partition("#")
    if notice:
        path += ("&" if "?" in path else "?") + f"ok={notice}"
    return redirect(path + hash_sign + fragment, code=303)


def safe_target(target: str | None) -> str:
    """Only an absolute path of this site, never another site (`//host`, `/\\host`,
    `https://…`), nor characters that browsers drop (`/<TAB>/host` is `//host` to them) or
    that a header cannot carry (CR, LF)."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or not target.isprintable()
    ):
        return "/tableau-de-bord"
    return target


# -- rendering --------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def static_asset(name: str) -> tuple[bytes, str] | None:
    """A file of gateway/static and its hash, read once per process (the files ship with the
    code); None for a name outside it or missing."""
    path = (STATIC / name).resolve()
    if not path.is_file() or STATIC.resolve() not in path.parents:
        return None
    content = path.read_bytes()
    return content, hashlib.sha256(content).hexdigest()[:16]


def asset_url(name: str) -> str:
    """The URL of a static file, with its hash so that browsers may keep it for a year."""
    found = static_asset(name)
    return f"/static/{name}?v={found[1][:10] if found else '0'}"


def commune_name(code: str | None) -> str:
    if not code:
        return ""
    found = communes().get(code)
    return found.name if found else code


@functools.cache
def make_templates() -> Environment:
    """One environment for every page route of the process."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "svg"], default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(static=asset_url, commune_name=commune_name, Role=Role)
    env.filters.update(
        money=french.money,
        number=french.number,
        km=french.km,
        long_date=french.long_date,
        short_date=french.short_date,
        date_time=french.date_time,
        free_from=lambda value: french.free_from(value, paris_today()),
        month_name=french.month_name,
        quantity_with_unit=french.quantity_with_unit,
        counted=french.counted,
        of_commune=of_commune,
        to_commune=to_commune,
        served_days=french.served_days,
        period=lambda start, end, unit="day": french.period_text(start, end, unit),
        booking_status=lambda s: french.BOOKING_STATUS.get(s, s),
        engagement_status=lambda s: french.ENGAGEMENT_STATUS.get(s, s),
        timesheet_status=lambda s: french.TIMESHEET_STATUS.get(s, s),
        invoice_status=lambda s: french.INVOICE_STATUS.get(s, s),
        netting_status=lambda s: french.NETTING_STATUS.get(s, s),
        netting_decision=lambda s: french.NETTING_DECISION.get(s, s),
        kind_label=lambda s: french.KINDS.get(s, s),
        phone=phone_national,
        category_label=lambda s: CATEGORIES.get(s, s),
        unit_label=lambda s: french.UNITS.get(s, s),
        role_label=lambda s: french.ROLES.get(s, s),
    )
    return env


# -- the entrypoint ---------------------------------------------------------------------


class PageRoute(HttpEntrypoint):
    """A web page: GET shows it, POST handles its form. `public` pages need no session;
    `roles` are checked before the page method runs, as the API does."""

    def __init__(
        self,
        method: str,
        url: str,
        *,
        public: bool = False,
        roles: tuple[Role, ...] = (),
        max_body_bytes: int | None = None,
        **kw,
    ):
        kw.setdefault("expected_exceptions", (ServiceError,))
        super().__init__(method, url, **kw)
        self.public = public
        self.roles = roles
        # a form taking a photo may send more than the gateway's usual body limit
        self.max_body_bytes = max_body_bytes

    def setup(self) -> None:
        super().setup()
        settings = self.container.config["GATEWAY"]
        self.settings = settings
        self.secure = settings.public_url.startswith("https://")
        self.sessions = SessionStore(
            service_engine(self.container.config), settings.session_ttl_seconds
        )
        self.templates = make_templates()

    def handle_request(self, request: Request) -> Response:
        request.shallow = False
        started = time.perf_counter()
        request_id = request_id_of(request)
        visitor = None
        try:
            visitor = self.sessions.visitor(request.cookies.get(self._cookie_name()))
            response = self._answer(request, visitor, request_id)
        except Exception as exc:
            response = self.error_page(exc, visitor, request_id, request)
        self._secure(response, request_id)
        HTTP_REQUESTS.labels("gateway", self.url, self.method, str(response.status_code)).inc()
        HTTP_DURATION.labels("gateway", self.url, self.method).observe(
            time.perf_counter() - started
        )
        return response

    @staticmethod
    def _secure(response: Response, request_id: str) -> None:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if response.mimetype == "text/html":
            response.headers["Cache-Control"] = "no-store"
        response.headers["X-Request-ID"] = request_id

    def answer_unrouted(self, request: Request, exc: HTTPException) -> Response | None:
        """A page that does not exist, or a form's address opened without its form (the
        result of a form reloaded, a link copied): the French error page, with the menu of
        whoever is signed in and, for a form's address, a link to the page the form is on
        (the API's paths, and /metrics, are the API's to answer)."""
        if answered_by_the_api(request.path):
            return None
        request_id = request_id_of(request)
        try:
            visitor = self.sessions.visitor(request.cookies.get(self._cookie_name()))
        except Exception:  # the sessions' database is lost: the page still says what it is
            log.warning("no session for an unrouted page", exc_info=True)
            visitor = None
        if isinstance(exc, MethodNotAllowed) and request.method in ("GET", "HEAD"):
            problem = PageProblem(
                405,
                "Cette adresse est celle d'un formulaire déjà envoyé : elle ne s'ouvre pas "
                "seule, et le formulaire n'est pas envoyé de nouveau.",
                back=self._page_above(request),
            )
        elif isinstance(exc, MethodNotAllowed):
            problem = PageProblem(405, "Cette page ne reçoit pas de formulaire.")
        else:
            problem = PageProblem(404, "Cette page n'existe pas ou plus.")
        response = self.error_page(problem, visitor, request_id, request)
        if isinstance(exc, MethodNotAllowed):
            response.headers["Allow"] = ", ".join(sorted(exc.valid_methods or ()))
        self._secure(response, request_id)
        return response

    @staticmethod
    def _page_above(request: Request) -> str:
        """The nearest page above a form's address that opens with GET (the form is there:
        /finances for /finances/facturation, the booking for its actions), found with the
        routes the request was matched against."""
        routes = getattr(request, "url_adapter", None)
        parts = request.path.rstrip("/").split("/")
        while routes is not None and len(parts) > 2:
            parts.pop()
            above = "/".join(parts)
            try:
                routes.match(above, method="GET")
            except HTTPException:
                continue
            return above
        return "/tableau-de-bord"

    def _cookie_name(self) -> str:
        return "__Host-mutualis_session" if self.secure else "mutualis_session"

    def _answer(self, request: Request, visitor: Visitor | None, request_id: str) -> Response:
        if visitor is None and not self.public:
            target = request.full_path.rstrip("?") if request.method == "GET" else "/"
            return redirect(f"{LOGIN_PATH}?suite={quote(target)}", code=303)
        form: MultiDict = MultiDict()
        if request.method == "POST":
            form = self._read_form(request)
            self._check_csrf(request, visitor, form)
        if self.roles and (visitor is None or not visitor.has(*self.roles)):
            raise Forbidden("role")
        kwargs = dict(request.path_values)
        kwargs["web"] = Web(request, visitor, form, self.sessions, self.secure)
        done = Event()
        self.container.spawn_worker(
            self,
            (request,),
            kwargs,
            context_data={"correlation_id": request_id},
            handle_result=partial(self.handle_result, done),
        )
        result = done.wait()
        if isinstance(result, Response):
            return result
        if visitor is not None:
            return self.render(result, visitor, request, visitor.csrf_token)
        # before sign-in there is no session: the login form's token is also a cookie
        # (double submit), and its POST must bring both
        token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
        response = self.render(result, visitor, request, token)
        response.set_cookie(
            LOGIN_CSRF_COOKIE,
            token,
            path=LOGIN_PATH,
            secure=self.secure,
            httponly=True,
            samesite="Strict",
        )
        return response

    def handle_result(self, event, worker_ctx, result, exc_info):
        """A page of a signed-in visitor gets the episodes in force over their commune
        (its banner), asked while the worker and its RPC proxies are still there."""
        web = worker_ctx.kwargs.get("web")
        if exc_info is None and isinstance(result, Page) and web and web.visitor:
            from gateway.pages.emergencies import EPISODES

            bookings = getattr(worker_ctx.service, "bookings", None)
            if bookings is not None:
                result.context.setdefault("emergencies", EPISODES.over(bookings, web.caller))
        return super().handle_result(event, worker_ctx, result, exc_info)

    # -- forms and CSRF ---------------------------------------------------------------

    def _read_form(self, request: Request) -> MultiDict:
        limit = self.max_body_bytes or self.settings.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise PageProblem(413, "Le fichier ou le formulaire est trop volumineux.")
        request.max_content_length = limit
        request.max_form_memory_size = limit
        form = MultiDict(request.form)
        for name, upload in request.files.items():
            form[name] = upload
        return form

    def _check_csrf(self, request: Request, visitor: Visitor | None, form: MultiDict) -> None:
        origin = request.headers.get("Origin")
        if origin and origin != "null" and urlsplit(origin).netloc != request.host:
            raise PageProblem(403, "Ce formulaire ne vient pas de Mutualis.")
        sent = form.get("csrf")
        expected = (
            visitor.csrf_token if visitor is not None else request.cookies.get(LOGIN_CSRF_COOKIE)
        )
        if not same_secret(sent, expected):
            raise PageProblem(
                403, "Le formulaire a expiré ou ne vient pas de Mutualis. Rechargez la page."
            )

    # -- rendering --------------------------------------------------------------------

    def render(self, page: Page, visitor: Visitor | None, request: Request, csrf: str) -> Response:
        notice = NOTICES.get(request.args.get("ok", ""))
        template = self.templates.get_template(page.template)
        html = template.render(
            visitor=visitor,
            csrf=csrf,
            path=request.path,
            notice=notice,
            menu=menu_of(visitor, request),
            **page.context,
        )
        return Response(html, status=page.status, headers=page.headers, mimetype="text/html")

    def error_page(
        self,
        exc: BaseException,
        visitor: Visitor | None,
        request_id: str,
        request: Request | None = None,
    ) -> Response:
        """The French page of a failure: what happened in words, the menu, a way back and
        the reference to give the support (never werkzeug's English page)."""
        status, lines = failure_of(exc)
        back = exc.back if isinstance(exc, PageProblem) else None
        page = Page(
            "error.html",
            {
                "title": ERROR_TITLES.get(status, "Erreur"),
                "lines": lines,
                "status": status,
                "request_id": request_id,
                "back": back,
            },
            status,
        )
        try:
            html = self.templates.get_template(page.template).render(
                visitor=visitor,
                csrf=visitor.csrf_token if visitor else "",
                notice=None,
                path=request.path if request is not None else "",
                menu=menu_of(visitor, request),
                **page.context,
            )
        except Exception:  # the error page itself failed: plain words
            log.exception("error page failed")
            html = (
                '<!doctype html><html lang="fr"><title>Erreur</title>'
                f"<p>Erreur {status} : {escape(lines[0])}</p></html>"
            )
        return Response(html, status=status, mimetype="text/html")


ERROR_TITLES = {
    400: "Demande incomprise",
    403: "Accès refusé",
    404: "Page introuvable",
    405: "Action impossible",
    409: "Action impossible",
    413: "Envoi trop volumineux",
    422: "Demande refusée",
    500: "Erreur inattendue",
    503: "Service momentanément indisponible",
}
UNEXPECTED = "Une erreur inattendue s'est produite. Elle est enregistrée."


def failure_of(exc: BaseException) -> tuple[int, list[str]]:
    """The HTTP status of a failure and the sentences that tell a person about it."""
    if isinstance(exc, PageProblem):
        return exc.status, [exc.detail]
    if isinstance(exc, Forbidden):
        return 403, ["Votre rôle ne donne pas accès à cette page."]
    if isinstance(exc, ServiceError):
        return status_of(exc), french.explain_refusal(exc)
    if lost_database(exc):
        return 503, ["Une base de données est indisponible ; réessayez bientôt."]
    if isinstance(exc, HTTPException) and exc.code is not None and exc.code < 500:
        # werkzeug's own refusals while reading a request (a malformed form, too large)
        sentences = {
            404: "Cette page n'existe pas ou plus.",
            413: "Le fichier ou le formulaire est trop volumineux.",
        }
        return exc.code, [sentences.get(exc.code, "Le navigateur a envoyé une demande illisible.")]
    if isinstance(exc, RemoteError):
        log.error("a service failed: %s", exc)
    else:
        log.exception("page failed", exc_info=exc)
    return 500, [UNEXPECTED]


def menu_of(visitor: Visitor | None, request: Request | None) -> list[MenuItem]:
    if visitor is None:
        return []
    if request is None:
        return menu(visitor.roles, "")
    return menu(visitor.roles, request.path, request.args)


class PageProblem(Exception):
    """Stops a page with an HTTP status and a sentence for the person, and where to go
    back to (the dashboard unless said)."""

    def __init__(self, status: int, detail: str, back: str | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.back = back


page = PageRoute.decorator
