"""What the tests share: the whole stack as real processes, throw-away vhosts and databases,
waiting for other processes, the days tests book, the problems the API answers and the
events the services publish. Each name is importable from `tests.support` itself."""

from contracts.clock import PARIS, paris_today
from tests.support.days import at, day, instant, this_period
from tests.support.events import drain, listen
from tests.support.problems import PROBLEM_JSON, assert_problem
from tests.support.stack import (
    COMPONENTS,
    MUTUALIS,
    SERVICES,
    PostgresDatabase,
    Stack,
    Vhost,
    free_port,
)
from tests.support.waiting import wait_until

__all__ = [
    "COMPONENTS",
    "MUTUALIS",
    "PARIS",
    "PROBLEM_JSON",
    "SERVICES",
    "PostgresDatabase",
    "Stack",
    "Vhost",
    "assert_problem",
    "at",
    "day",
    "drain",
    "free_port",
    "instant",
    "listen",
    "paris_today",
    "this_period",
    "wait_until",
]
