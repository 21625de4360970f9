"""Bodies and answers of the gateway's own routes (auth, communes, pages of results)."""

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contracts.listings import DateOrInstant


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=200)
    # the second factor, for an account that has one (or must): one of the two
    totp_code: str | None = Field(
        default=None,
        max_length=20,
        description="The 6-digit code of the authenticator app (each code is accepted once)",
        examples=["492039"],
    )
    recovery_code: str | None = Field(
        default=None,
        max_length=40,
        description="A single-use recovery code given at enrolment, instead of totp_code",
        examples=["k7m2-9xq4-p8vd"],
    )

    @field_validator("email")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        # PostgreSQL cannot compare with text holding a NUL
        if "\x00" in value:
            raise ValueError("NUL characters are not allowed")
        return value


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class CommuneRef(BaseModel):
    insee_code: str
    name: str


class Me(BaseModel):
    id: str
    email: str
    name: str
    commune: CommuneRef
    roles: list[str]


class CommuneQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    q: str | None = Field(default=None, max_length=100)
    department: str | None = Field(default=None, pattern=r"^(\d{2}|2A|2B|\d{3})$")
    limit: int = Field(default=20, ge=1, le=100)


class Epci(BaseModel):
    siren: str
    name: str


class CommuneView(BaseModel):
    insee_code: str
    name: str
    siren: str
    department_code: str
    department: str
    region: str
    population: int
    postal_codes: list[str]
    epci: Epci | None
    latitude: float | None
    longitude: float | None
    coordinates_source: str | None


class CommunePage(BaseModel):
    items: list[CommuneView]
    next_cursor: str | None = None


class AvailabilityWindow(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: DateOrInstant = Field(alias="from", description="date or ISO datetime with offset")
    to: DateOrInstant = Field(description="date (included) or ISO datetime with offset (excluded)")
