"""Browser tests' infrastructure: Playwright driving Debian's Chromium, headless, in the
eventlet-patched test process; axe-core checks of a page's accessibility."""

from __future__ import annotations

import functools
import json
from contextlib import contextmanager
from pathlib import Path

import greenlet
from eventlet.hubs.hub import BaseHub
from playwright.sync_api import Browser, Page, sync_playwright

from infra.settings import PROJECT_ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE = PROJECT_ROOT / "tests" / "e2e" / "browser" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = PROJECT_ROOT / "test-output" / "screenshots"


def _keep_playwright_parents(switch):
    """Playwright's sync API runs its event loop, and each event handler, in greenlets of
    its own that must return to the greenlet that started them when they end. eventlet's
    hub makes itself the parent of any greenlet that waits on it (the loop's pipes are
    green in this monkey-patched process), so they would end in the hub and the test would
    hang. Give them their parent back when the hub resumes them."""

    @functools.wraps(switch)
    def keeping_parent(hub):
        current = greenlet.getcurrent()
        if not type(current).__module__.startswith("playwright"):
            return switch(hub)
        parent = current.parent
        try:
            return switch(hub)
        finally:
            current.parent = parent

    return keeping_parent


BaseHub.switch = _keep_playwright_parents(BaseHub.switch)


@contextmanager
def chromium():
    """Headless Chromium, closed after use. Playwright gives each launch a fresh temporary
    profile (user-data-dir) of its own and removes it on close."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def sign_in(browser: Browser, base_url: str, email: str, **context_options) -> Page:
    """A new browser context (its own cookies) signed in through the login form."""
    context = browser.new_context(
        base_url=base_url, locale="fr-FR", timezone_id="Europe/Paris", **context_options
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto("/connexion")
    page.get_by_label("Adresse e-mail professionnelle").fill(email)
    page.get_by_label("Mot de passe").fill("mutualis-demo")
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url("**/tableau-de-bord")
    return page


def axe_violations(page: Page, impacts: tuple[str, ...] = ("serious", "critical")) -> list[dict]:
    """axe-core's WCAG 2.x A/AA violations of the page as it is, of the given impacts."""
    if not AXE.exists():
        raise RuntimeError(
            f"{AXE} is missing: run `make browser-deps` (npm ci in tests/e2e/browser)"
        )
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        """async () => await axe.run(document, {
            runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']},
            resultTypes: ['violations'],
        })"""
    )
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"]][:5],
        }
        for v in result["violations"]
        if v["impact"] in impacts
    ]


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def describe(violations: list[dict]) -> str:
    return json.dumps(violations, ensure_ascii=False, indent=1)
