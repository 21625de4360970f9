"""The matching index of a consultants process follows its database, on both backends:
profiles published, edited (text, skills) and withdrawn after it was loaded are
matched as a freshly loaded index and the brute force match them, with the same documents
and homes kept; the check before each match counts every change once."""

from __future__ import annotations

import random

from bench.seed import bench_communes
from contracts.caller import Caller, Role
from contracts.consultants import ConsultantTerms
from infra.database import DatabaseAccess, make_engine
from services.consultants import repository
from services.consultants.dependencies import Catalogue
from services.consultants.domain import Need
from services.consultants.models import ConsultantRow
from services.consultants.service import publish_consultant
from tests.support.schema import migrated
from tests.unit.test_consultants_matching_exact import (
    answered,
    assert_same_rankings,
    catalogue,
    variants,
)


def manager(commune: str) -> Caller:
    return Caller(user_id="test", commune=commune, roles=frozenset({Role.MANAGER}))


def terms_like(profile) -> ConsultantTerms:
    return ConsultantTerms(
        name=profile.name,
        title=profile.title,
        skills=list(profile.skills),
        bio=profile.bio,
        day_rate_cents=profile.day_rate_cents,
        max_days_per_month=profile.max_days_per_month,
    )


def shape(catalogue_: Catalogue) -> tuple:
    """What the index holds, whatever order it was built in."""
    index = catalogue_.index
    return (
        {
            (tuple(d.weights.items()), d.skills): {h: set(c) for h, c in d.homes.items()}
            for d in index.documents.values()
        },
        {h: set(c) for h, c in index.homes.items()},
        set(index.profiles),
        {cid: view.model_dump() for cid, view in catalogue_._views.items()},
    )


def test_matching_index_follows_profiles_published_edited_and_withdrawn(database_url):
    rng = random.Random(11)
    homes = {c.insee_code: c for c in bench_communes()}
    models = [p for p in catalogue(rng, 400) if p.home_commune in homes]
    migrated("consultants", database_url)
    db = DatabaseAccess(make_engine(database_url), "consultants", None, "test")
    with db.transaction() as tx:
        for p in models[:250]:
            publish_consultant(tx, manager(p.home_commune), terms_like(p), [])
    with db.reading() as session:
        assert repository.catalogue_version(session) == 250  # one change per publication
    kept = Catalogue()
    asked = [n for n in variants(rng, 8, sorted(homes)) if n.origin is not None]
    with db.reading() as session:
        before = [answered(kept.match(session, need)[0]) for need in asked]
    assert any(result[0] for result in before)

    with db.transaction() as tx:
        for p in models[250:]:  # published since
            publish_consultant(tx, manager(p.home_commune), terms_like(p), [])
        rows = list(tx.session.query(ConsultantRow).order_by(ConsultantRow.id))
        for row in rng.sample(rows[:250], 40):  # edited: another's text and skills
            other = rng.choice(models)
            repository.change_terms(row, terms_like(other))
        for row in rng.sample(rows[:250], 40):  # withdrawn
            repository.withdraw(row)

    with db.reading() as session:  # each change counted once, in its transaction
        assert repository.catalogue_version(session) == len(models) + 40 + 40
    fresh = Catalogue()
    with db.reading() as session:
        for need in [*asked, Need(text="urbanisme", origin=asked[0].origin, limit=50)]:
            assert answered(kept.match(session, need)[0]) == answered(fresh.match(session, need)[0])
    assert shape(kept) == shape(fresh)
    assert len(kept.index) == len(models) - 40
    assert_same_rankings(kept.index, asked)
