"""The operator's command line on real databases: users, outbox backlog, the validation
of stored invoices."""

from __future__ import annotations

import os
import subprocess

from sqlalchemy import create_engine, select

from contracts.clock import paris_today
from contracts.listings import ListingDraft
from gateway.auth import password_matches
from gateway.models import User
from infra.database import DatabaseAccess, make_engine
from infra.migrations import upgrade
from infra.settings import PROJECT_ROOT
from services.billing import domain
from services.billing.models import InvoiceRow
from services.listings.service import publish_listing
from tests.integration.billing_support import (
    add_charges,
    billing_database,
    billing_service,
    caller,
    declare_profiles,
)
from tests.support import MUTUALIS


def mutualis(env: dict, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [*MUTUALIS, *args],
        input=stdin,
        text=True,
        capture_output=True,
        cwd=PROJECT_ROOT,
        env=dict(os.environ, **env),
    )


def test_an_operator_creates_a_communes_user_who_can_then_log_in(tmp_path):
    url = f"sqlite:///{tmp_path / 'gateway.sqlite3'}"
    upgrade("gateway", url)
    env = {"GATEWAY_DATABASE_URL": url}
    args = [
        "create-user",
        "--email",
        "Secretariat@Firminy.fr",
        "--name",
        "Secrétariat",
        "--commune",
        "42095",
        "--roles",
        "agent,manager",
        "--password-stdin",
    ]

    created = mutualis(env, *args, stdin="une phrase de passe solide\n")
    assert created.returncode == 0, created.stderr
    engine = create_engine(url)
    with engine.connect() as conn:
        user = conn.execute(select(User.__table__)).one()
    assert (user.email, user.commune, user.roles) == (
        "secretariat@firminy.fr",
        "42095",
        "agent,manager",
    )
    assert password_matches(user.password_hash, "une phrase de passe solide")

    again = mutualis(env, *args, stdin="une phrase de passe solide\n")
    assert again.returncode != 0 and "already exists" in again.stderr
    bad = mutualis(env, *[a if a != "42095" else "99999" for a in args], stdin="x" * 20 + "\n")
    assert bad.returncode != 0 and "commune" in bad.stderr
    short = mutualis(
        env,
        *[a if a != "Secretariat@Firminy.fr" else "b@firminy.fr" for a in args],
        stdin="court\n",
    )
    assert short.returncode != 0 and "password" in short.stderr
    with engine.connect() as conn:
        assert len(conn.execute(select(User.__table__)).all()) == 1


def test_the_outbox_backlog_shows_what_waits(tmp_path):
    urls = {s: f"sqlite:///{tmp_path / (s + '.sqlite3')}" for s in ("listings", "bookings")}
    for service, url in urls.items():
        upgrade(service, url)
    db = DatabaseAccess(make_engine(urls["listings"]), "listings", None, "test")
    with db.transaction() as tx:
        for n in range(3):
            publish_listing(
                tx,
                "42044",
                ListingDraft(
                    title=f"Saleuse {n}",
                    category="deneigement",
                    kind="equipment",
                    pricing_unit="day",
                    rate_cents=9000,
                ),
            )
    env = {f"{s.upper()}_DATABASE_URL": u for s, u in urls.items()}
    for service in ("consultants", "billing", "notifications", "gateway"):  # empty: the others
        env[f"{service.upper()}_DATABASE_URL"] = f"sqlite:///{tmp_path / (service + '.sqlite3')}"
        upgrade(service, env[f"{service.upper()}_DATABASE_URL"])
    shown = mutualis(env, "outbox")
    assert shown.returncode == 0, shown.stderr
    rows = {line.split()[0]: line.split()[1] for line in shown.stdout.splitlines()[1:]}
    assert rows["listings"] == "3"
    assert rows["bookings"] == "0"


def test_an_operator_disables_a_user_who_then_signs_in_no_more(tmp_path):
    url = f"sqlite:///{tmp_path / 'gateway.sqlite3'}"
    upgrade("gateway", url)
    env = {"GATEWAY_DATABASE_URL": url}
    created = mutualis(
        env,
        *("create-user", "--email", "agent@firminy.fr", "--name", "Agent", "--commune", "42095"),
        *("--roles", "agent", "--password-stdin"),
        stdin="une phrase de passe solide\n",
    )
    assert created.returncode == 0, created.stderr

    disabled = mutualis(env, "users", "disable", "Agent@Firminy.fr")
    assert disabled.returncode == 0, disabled.stderr
    with create_engine(url).connect() as conn:
        user = conn.execute(select(User.__table__)).one()
    assert user.disabled_at is not None

    unknown = mutualis(env, "users", "disable", "nobody@firminy.fr")
    assert unknown.returncode != 0 and "nobody@firminy.fr" in unknown.stderr


def test_an_operator_validates_a_periods_stored_invoices_and_sees_the_invalid_one(pg_database):
    db = billing_database(pg_database.url)
    declare_profiles(db, ["42044", "42218", "42207"])
    today = paris_today()
    period = domain.period_of(today)
    add_charges(db, [("42044", "42218", 12000), ("42044", "42207", 3000)], today)
    service = billing_service(db)
    issued = service.run_billing(caller("42044", "finance"), {"period": period})["invoices"]
    first, second = sorted(issued, key=lambda i: i["number"])
    service.issue_credit_note(caller("42044", "finance"), first["id"], {"reason": "Erreur"})
    # a document an older version stored: the buyer's SIREN is not one (BR-FR-10/BT-47)
    with db.transaction() as tx:
        row = tx.session.get(InvoiceRow, second["id"])
        row.customer = row.customer | {"siren": "2142"}

    env = {"BILLING_DATABASE_URL": pg_database.url}
    checked = mutualis(env, "invoices", "validate", "--period", period)
    assert checked.returncode == 1, checked.stderr
    assert f"invoice {second['number']}: INVALID" in checked.stdout
    assert f"invoice {first['number']}: INVALID" not in checked.stdout
    assert f"period {period}: 3 document(s) validated, 1 invalid" in checked.stdout

    with db.transaction() as tx:
        row = tx.session.get(InvoiceRow, second["id"])
        row.customer = row.customer | {"siren": row.customer["siret"][:9]}
    assert mutualis(env, "invoices", "validate", "--period", period).returncode == 0
    refused = mutualis(env, "invoices", "validate", "--period", "2026-13")
    assert refused.returncode != 0 and "not a period" in refused.stderr
