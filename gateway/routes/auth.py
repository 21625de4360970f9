"""Auth routes: tokens for e-mail and password, and who a token belongs to."""

from contracts.caller import Caller
from gateway.auth import TokenIssuer
from gateway.errors import Unauthenticated
from gateway.http import api
from gateway.login_attempts import authenticate_slowly
from gateway.models import User
from gateway.schemas import Me, TokenRequest, TokenResponse
from gateway.second_factor import FACTOR, Codes
from gateway.users import caller_of, factor_of
from infra.communes import communes

PROBLEM = "#/components/schemas/Problem"
SIGN_IN_PROBLEMS = {
    "401": {
        "description": "Unknown e-mail, wrong password, or a wrong or already used code; or "
        "the account signs in with a second factor the request lacks: then `missing_factor` "
        "says which (`totp`: send `totp_code` or `recovery_code`) and `enrolled` whether the "
        "account has one yet (if not, enrol on the web pages, /connexion)",
        "content": {
            "application/problem+json": {
                "schema": {
                    "allOf": [
                        {"$ref": PROBLEM},
                        {
                            "type": "object",
                            "properties": {
                                "missing_factor": {"type": "string", "enum": [FACTOR]},
                                "enrolled": {"type": "boolean"},
                            },
                        },
                    ]
                },
                "example": {
                    "type": "urn:mutualis:problem:second-factor-required",
                    "title": "Second factor required",
                    "status": 401,
                    "detail": "This account signs in with a second factor: send totp_code "
                    "(or recovery_code)",
                    "errors": [],
                    "missing_factor": FACTOR,
                    "enrolled": True,
                },
            }
        },
    },
    "429": {
        "description": "Too many failed logins of the account or the client address: wait "
        "`Retry-After` seconds (failed codes count as failed logins)",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        "content": {"application/problem+json": {"schema": {"$ref": PROBLEM}}},
    },
}


class AuthRoutes:
    @api(
        "POST",
        "/api/v1/auth/token",
        public=True,
        body=TokenRequest,
        response=TokenResponse,
        tag="Auth",
        summary="Exchange e-mail and password for an access token",
        description="An operator, and a finance user whose commune requires it or who "
        "enrolled, also sends the code of their authenticator app (`totp_code`) or a "
        "recovery code: without it, a 401 says `missing_factor`.",
        responses=SIGN_IN_PROBLEMS,
    )
    def issue_token(self, request, body: TokenRequest):
        codes = Codes(totp=body.totp_code or "", recovery=body.recovery_code or "")
        user = authenticate_slowly(
            self.db, self.config, request, body.email, body.password, "api", codes
        )
        if user is None:
            raise Unauthenticated(
                "Unknown e-mail, wrong password or wrong code"
                if codes.given
                else "Unknown e-mail or wrong password"
            )
        settings = self.config["GATEWAY"]
        token = TokenIssuer.from_settings(settings).issue(caller_of(user), factor_of(user))
        return TokenResponse(access_token=token, expires_in=settings.token_ttl_seconds)

    @api("GET", "/api/v1/me", response=Me, tag="Auth", summary="Who the token belongs to")
    def me(self, request, caller: Caller):
        with self.db.reading() as session:
            user = session.get(User, caller.user_id)
        if user is None:
            raise Unauthenticated("This account no longer exists")
        commune = communes().get(user.commune)
        return Me(
            id=user.id,
            email=user.email,
            name=user.name,
            commune={"insee_code": user.commune, "name": commune.name if commune else user.commune},
            roles=sorted(user.roles.split(",")),
        )
