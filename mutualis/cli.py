"""`mutualis`: the operator's command line (serve, relay, migrate, seed, dead letters)."""

from __future__ import annotations

import argparse
import json
import re
import sys
import warnings
from pathlib import Path

# nameko 2.14 is built on eventlet, which warns on import that it is in maintenance mode
warnings.filterwarnings("ignore", message="\nEventlet is deprecated")


def _serve(args) -> None:
    import eventlet

    eventlet.monkey_patch()  # before anything opens a socket
    from nameko.cli.run import run

    from infra.logs import configure_logging
    from mutualis.components import service_class, settings_of

    settings = settings_of(args.component)
    configure_logging(args.component, settings.log_level, settings.log_format)
    run([service_class(args.component)], config=settings.nameko_config())


def _relay(args) -> None:
    from infra.logs import configure_logging
    from infra.relay import run_relay
    from mutualis.components import settings_of

    settings = settings_of(args.service)
    configure_logging(f"{args.service}-relay", settings.log_level, settings.log_format)
    run_relay(
        args.service,
        settings.database_url,
        settings.amqp_uri,
        settings.relay_poll_seconds,
        settings.relay_idle_seconds,
        settings.relay_in_flight,
    )


def _migrate(args) -> None:
    from kombu import Connection

    from infra.migrations import upgrade
    from infra.topology import declare_all
    from mutualis.components import COMPONENTS, settings_of

    for name in args.components or list(COMPONENTS):
        upgrade(name, settings_of(name).database_url)
        print(f"migrated {name}")
    if not args.no_broker:
        with Connection(settings_of("listings").amqp_uri) as conn:
            declare_all(conn)
        print("declared event queues")


def _seed(args) -> None:
    from demo.seed import seed_demo

    for line in seed_demo():
        print(line)


def _dead_letters(args) -> None:
    from kombu import Connection

    from infra.dead_letters import list_dead_letters, replay_dead_letters
    from mutualis.components import settings_of

    with Connection(settings_of("listings").amqp_uri) as conn:
        if args.action == "list":
            for entry in list_dead_letters(conn, args.subscription):
                print(json.dumps(entry, ensure_ascii=False, default=str))
        else:
            moved = replay_dead_letters(conn, args.subscription, args.limit)
            print(f"replayed {moved} message(s)")


def _outbox(args) -> None:
    from sqlalchemy import func, select

    from infra.database import make_engine
    from infra.messaging_tables import outbox
    from mutualis.components import RELAYED, settings_of

    print(f"{'service':<14}{'pending':>9}  oldest pending")
    for service in RELAYED:
        engine = make_engine(settings_of(service).database_url)
        with engine.connect() as conn:
            pending, oldest = conn.execute(
                select(func.count(), func.min(outbox.c.created_at)).where(
                    outbox.c.published_at.is_(None)
                )
            ).one()
        print(f"{service:<14}{pending:>9}  {oldest or '-'}")


def _create_user(args) -> None:
    import getpass

    from gateway.users import create_user

    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass()
    user = create_user(args.email, args.name, args.commune, args.roles.split(","), password)
    print(f"created {user.email} ({user.commune}, {user.roles})")


def _disable_user(args) -> None:
    from gateway.users import disable_user

    user = disable_user(args.email)
    print(f"disabled {user.email}: signed out everywhere, tokens refused within a minute")


def _update_user(args) -> None:
    from gateway.users import update_user

    changes = {
        "email": args.new_email,
        "name": args.name,
        "roles": args.roles and args.roles.split(","),
    }
    user = update_user(args.email, {k: v for k, v in changes.items() if v is not None})
    print(f"updated {user.email} ({user.name}; {user.roles})")


def _require_totp(args) -> None:
    from gateway.second_factor import SecondFactors
    from gateway.users import gateway_engine

    signed_out = SecondFactors(gateway_engine()).require_for_finance(args.commune, not args.lift)
    if args.lift:
        print(f"{args.commune}: the finance team may sign in without a second factor")
    else:
        print(
            f"{args.commune}: the finance team signs in with a second factor;"
            f" {signed_out} user(s) without one signed out, to enrol at their next sign-in"
        )


def _reset_totp(args) -> None:
    from gateway.second_factor import SecondFactors
    from gateway.users import gateway_engine

    user = SecondFactors(gateway_engine()).reset(args.email)
    print(f"{user.email}: second factor removed, signed out; enrols again at the next sign-in")


def _billing_run(args) -> None:
    """A billing period issued (again) as an operator: issuing twice issues nothing twice."""
    import getpass

    from nameko.standalone.rpc import ClusterRpcProxy

    from contracts.billing import profile_blocked
    from mutualis.components import settings_of

    caller = {"user_id": f"cli:{getpass.getuser()}", "commune": "00000", "roles": ["operator"]}
    config = {"AMQP_URI": settings_of("billing").amqp_uri}
    with ClusterRpcProxy(config, timeout=600) as cluster:
        result = cluster.billing.run_billing(caller, {"period": args.period})
    print(f"period {result['period']}: {len(result['invoices'])} invoice(s) issued")
    for invoice in result["invoices"]:
        print(f"  {invoice.get('number')}  {invoice.get('total_cents', '')}")
    for pair in result.get("skipped", []):
        print(
            f"  not invoiced: {pair['supplier_commune']} -> {pair['customer_commune']} "
            f"({pair['charges']} charge(s)): {pair['reason']}"
        )
    if profile_blocked(result):  # what waits on a profile to fix: the operator must know
        sys.exit("some pairs wait for a billing profile to be fixed (see above)")


def _validate_invoices(args) -> None:
    """Every stored invoice and credit note of a period validated as generated today; the
    failures listed, exit status 1 if any."""
    from sqlalchemy.orm import Session

    from contracts.billing import PERIOD
    from infra.database import make_engine
    from mutualis.components import settings_of
    from services.billing.audit import documents_of_period

    if not re.fullmatch(PERIOD, args.period):
        sys.exit(f"not a period: {args.period} (YYYY-MM)")
    engine = make_engine(settings_of("billing").database_url)
    checked = failed = 0
    with Session(engine) as session:
        for document in documents_of_period(session, args.period):
            checked += 1
            if document.problems:
                failed += 1
                print(f"{document.kind} {document.number}: INVALID")
                for problem in document.problems:
                    print(f"  {problem}")
    print(f"period {args.period}: {checked} document(s) validated, {failed} invalid")
    if failed:
        sys.exit(1)


def _topology(args) -> None:
    from infra.topology import rabbitmq_definitions

    print(json.dumps(rabbitmq_definitions(), indent=2))


def _mail_catcher(args) -> None:
    from mutualis.mail_catcher import MAIL_DIR, serve

    refuse = frozenset(a.strip().lower() for a in args.refuse.split(",") if a.strip())
    serve(args.host, args.port, args.directory or MAIL_DIR, refuse)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="mutualis", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run one component (a service or the gateway)")
    p.add_argument("component")
    p.set_defaults(func=_serve)

    p = sub.add_parser("relay", help="publish a service's outbox")
    p.add_argument("service")
    p.set_defaults(func=_relay)

    p = sub.add_parser("migrate", help="bring databases to the latest schema, declare queues")
    p.add_argument("components", nargs="*")
    p.add_argument("--no-broker", action="store_true", help="do not declare queues")
    p.set_defaults(func=_migrate)

    p = sub.add_parser("seed", help="load the demo communes' users and listings (idempotent)")
    p.set_defaults(func=_seed)

    p = sub.add_parser("dead-letters", help="list or replay dead-lettered events")
    p.add_argument("action", choices=["list", "replay"])
    p.add_argument("--subscription", help="queue name of one subscription (default: all)")
    p.add_argument("--limit", type=int, default=1000)
    p.set_defaults(func=_dead_letters)

    p = sub.add_parser(
        "mail-catcher", help="a local SMTP server writing each mail to var/mail/ (make run)"
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8025)
    p.add_argument("--directory", type=Path, help="default: var/mail/")
    p.add_argument("--refuse", default="", help="comma-separated addresses answered 550")
    p.set_defaults(func=_mail_catcher)

    p = sub.add_parser("outbox", help="events waiting in each service's outbox")
    p.set_defaults(func=_outbox)

    p = sub.add_parser("create-user", help="create a commune's user (password asked)")
    p.add_argument("--email", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--commune", required=True, help="INSEE code")
    p.add_argument(
        "--roles", required=True, help="comma-separated: agent,manager,finance,operator,coordinator"
    )
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.set_defaults(func=_create_user)

    p = sub.add_parser("users", help="manage the gateway's users")
    users = p.add_subparsers(dest="users_command", required=True)
    p = users.add_parser("disable", help="a user signs in no more (sessions end, tokens refused)")
    p.add_argument("email")
    p.set_defaults(func=_disable_user)
    p = users.add_parser(
        "update", help="change a user's e-mail, name or roles (announced as user.updated)"
    )
    p.add_argument("email")
    p.add_argument("--new-email", help="the corrected address (a mailbox refused, say)")
    p.add_argument("--name")
    p.add_argument("--roles", help="comma-separated, replacing the user's roles")
    p.set_defaults(func=_update_user)
    p = users.add_parser(
        "require-totp", help="a commune's finance team must sign in with a second factor"
    )
    p.add_argument("--commune", required=True, help="INSEE code")
    p.add_argument("--lift", action="store_true", help="no longer required (the default)")
    p.set_defaults(func=_require_totp)
    p = users.add_parser(
        "reset-totp", help="remove a user's second factor (phone and recovery codes lost)"
    )
    p.add_argument("email")
    p.set_defaults(func=_reset_totp)

    p = sub.add_parser("billing-run", help="issue a period's invoices (safe to run again)")
    p.add_argument("--period", required=True, help="YYYY-MM")
    p.set_defaults(func=_billing_run)

    p = sub.add_parser("invoices", help="check the invoices billing has issued")
    invoices = p.add_subparsers(dest="invoices_command", required=True)
    p = invoices.add_parser(
        "validate",
        help="validate a period's invoices and credit notes (UBL and Factur-X CII: XSD, "
        "EN 16931 and French rules); exit status 1 if any fails",
    )
    p.add_argument("--period", required=True, help="YYYY-MM")
    p.set_defaults(func=_validate_invoices)

    p = sub.add_parser("topology", help="print the broker topology as RabbitMQ definitions")
    p.set_defaults(func=_topology)

    args = parser.parse_args(argv)
    from contracts.errors import ServiceError

    try:
        args.func(args)
    except ServiceError as exc:
        details = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in exc.errors)
        sys.exit(f"{exc.detail}" + (f" ({details})" if details else ""))
