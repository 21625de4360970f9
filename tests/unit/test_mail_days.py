"""A mail names the communes' day: a day as sent, an instant as the day it is in Paris."""

from services.notifications.mails import day


def test_a_day_is_named_as_sent():
    assert day("2026-12-31") == "jeudi 31 décembre 2026"


def test_an_instant_is_named_by_its_day_in_paris():
    assert day("2026-12-31T23:30:00+00:00") == "vendredi 1 janvier 2027"
    assert day("2027-01-01T00:30:00+01:00") == "vendredi 1 janvier 2027"
