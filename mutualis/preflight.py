"""Before `make run`: is the broker there? And, with --banner, where to go and who to be."""

import sys

from kombu import Connection

from mutualis.components import settings_of


def main() -> None:
    settings = settings_of("gateway")
    try:
        with Connection(settings.amqp_uri, connect_timeout=3) as conn:
            conn.connect()
    except Exception as exc:
        sys.exit(
            f"RabbitMQ is not reachable at {settings.amqp_uri.split('@')[-1]} ({exc}).\n"
            "Start one, e.g. `rabbitmq-server -detached`, or set AMQP_URI, then run again."
        )
    if "--banner" in sys.argv:
        from demo.seed import DEMO_COMMUNES, DEMO_DOMAIN, DEMO_PASSWORD

        url = settings.public_url
        print(f"""
Mutualis is starting at {url}
  API docs:   {url}/api/docs     (OpenAPI: {url}/api/openapi.json)
  Demo logins (demo only), password `{DEMO_PASSWORD}`:
    agent.<insee>@{DEMO_DOMAIN}, manager.<insee>@…, finance.<insee>@…
      for the communes {", ".join(DEMO_COMMUNES)}
    operator@{DEMO_DOMAIN}
  Stop with Ctrl-C.
""")


if __name__ == "__main__":
    main()
