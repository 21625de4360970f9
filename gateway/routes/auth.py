"""Auth routes: tokens for e-mail and password, and who a token belongs to."""

from contracts.caller import Caller
from gateway.auth import TokenIssuer
from gateway.errors import Unauthenticated
from gateway.http import api
from gateway.login_attempts import authenticate_slowly
from gateway.models import User
from gateway.schemas import Me, TokenRequest, TokenResponse
from gateway.users import caller_of
from infra.communes import communes


class AuthRoutes:
    @api(
        "POST",
        "/api/v1/auth/token",
        public=True,
        body=TokenRequest,
        response=TokenResponse,
        tag="Auth",
        summary="Exchange e-mail and password for an access token",
    )
    def issue_token(self, request, body: TokenRequest):
        user = authenticate_slowly(self.db, self.config, request, body.email, body.password, "api")
        if user is None:
            raise Unauthenticated("Unknown e-mail or wrong password")
        settings = self.config["GATEWAY"]
        token = TokenIssuer.from_settings(settings).issue(caller_of(user))
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
