"""The banner of the territory's pages never breaks a page: it is asked of bookings after
the page is made, where an exception would leave the request unanswered."""

from nameko.exceptions import RemoteError

from contracts.caller import Caller, Role
from gateway.pages.emergencies import EpisodesOfCommunes

AGENT = Caller(user_id="u", commune="42189", roles=frozenset({Role.AGENT}))
EPISODE = {"id": "e1", "name": "Épisode neigeux Loire"}


class Bookings:
    def __init__(self, *answers):
        self.answers = list(answers)
        self.asked = 0

    def emergencies(self, caller, query):
        self.asked += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_a_bookings_failure_shows_the_page_without_a_fresh_banner_and_is_not_asked_again():
    banner = EpisodesOfCommunes(ttl=60)
    lost = RemoteError("OperationalError", "the bookings database went away")
    bookings = Bookings(lost)
    assert banner.over(bookings, AGENT) == []
    assert banner.over(bookings, AGENT) == []  # remembered: one slow answer, not one a page
    assert bookings.asked == 1


def test_the_last_episodes_seen_stay_shown_while_bookings_fails():
    banner = EpisodesOfCommunes(ttl=0)
    bookings = Bookings([EPISODE], RemoteError("OperationalError", "gone"))
    assert banner.over(bookings, AGENT) == [EPISODE]
    assert banner.over(bookings, AGENT) == [EPISODE]
    assert bookings.asked == 2
