"""`mutualis`: the operator's command line (serve, relay, migrate, seed, dead letters)."""

from __future__ import annotations

import argparse
import json
import sys
import warnings

# nameko 2.14 is built on eventlet, which warns on import that it is in maintenance mode
warnings.filterwarnings("ignore", message="\nEventlet is deprecated")


def _serve(args) -> None:
    import eventlet

    eventlet.monkey_patch()  # before anything opens a socket
    from nameko.cli.run import run

    from infra.components import service_class, settings_of
    from infra.logs import configure_logging

    settings = settings_of(args.component)
    configure_logging(args.component, settings.log_level, settings.log_format)
    run([service_class(args.component)], config=settings.nameko_config())


def _relay(args) -> None:
    from infra.components import settings_of
    from infra.logs import configure_logging
    from infra.relay import run_relay

    settings = settings_of(args.service)
    configure_logging(f"{args.service}-relay", settings.log_level, settings.log_format)
    run_relay(args.service, settings.database_url, settings.amqp_uri, settings.relay_poll_seconds)


def _migrate(args) -> None:
    from kombu import Connection

    from infra.components import COMPONENTS, settings_of
    from infra.migrations import upgrade
    from infra.topology import declare_all

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

    from infra.components import settings_of
    from infra.dead_letters import list_dead_letters, replay_dead_letters

    with Connection(settings_of("listings").amqp_uri) as conn:
        if args.action == "list":
            for entry in list_dead_letters(conn, args.subscription):
                print(json.dumps(entry, ensure_ascii=False, default=str))
        else:
            moved = replay_dead_letters(conn, args.subscription, args.limit)
            print(f"replayed {moved} message(s)")


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

    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main(sys.argv[1:])
