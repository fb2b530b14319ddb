"""The console in a real browser: Debian's Chromium driven by Playwright, against the whole
stack started as processes the way tests/e2e does (its fixtures are reused here)."""

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, Route, async_playwright

from shared.infrastructure.settings import PROJECT_ROOT
from tests.e2e.conftest import RunningStack, pytest_runtest_makereport, running_stack

__all__ = ["RunningStack", "pytest_runtest_makereport", "running_stack"]

CHROMIUM = "/usr/bin/chromium"  # Debian's package (.ci/run installs it)
# Screenshots stay after the run for a reviewer to look at (.run/ is ignored by git).
SCREENSHOT_DIR = Path(os.environ.get("WIMS_SCREENSHOT_DIR", PROJECT_ROOT / ".run" / "screenshots"))


@pytest.fixture(scope="session")
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install chromium (.ci/run does)")
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    return CHROMIUM


@pytest.fixture(scope="module")
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=chromium, headless=True)
        try:
            yield b
        finally:
            await b.close()


class Console:
    """One logged-in browser tab on the console."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.page, self.base_url = page, base_url
        self.console_errors: list[str] = []
        page.on(
            "console",
            lambda m: self.console_errors.append(m.text) if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: self.console_errors.append(str(e)))

    async def login(self, email: str, password: str) -> None:
        await self.page.goto(self.base_url + "/")
        await self.page.fill("#login-email", email)
        await self.page.fill("#login-password", password)
        await self.page.click("#login-submit")
        await self.page.wait_for_selector("#app-view:not([hidden])")

    async def wait_live(self) -> None:
        await self.page.wait_for_selector("#stream-status.is-live", timeout=20_000)

    async def shot(self, name: str) -> Path:
        path = SCREENSHOT_DIR / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=False)
        return path


# The policy every API response will carry (the console must work under it): no inline
# script, handler or style, nothing from another origin.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


async def _with_csp(route: Route) -> None:
    """Serves the response with the CSP added where the API does not send it yet, so a
    violation (logged by Chromium as a console error) fails the test."""
    response = await route.fetch()
    headers = dict(response.headers)
    headers.setdefault("content-security-policy", CSP)
    await route.fulfill(response=response, headers=headers)


@pytest.fixture
async def open_console(browser: Browser, running_stack: RunningStack):
    contexts = []

    async def make(width: int = 1400, height: int = 900) -> Console:
        ctx = await browser.new_context(viewport={"width": width, "height": height})
        contexts.append(ctx)
        # route.fetch() reads a whole body: the endless alert stream goes straight through
        await ctx.route(lambda url: "/alerts/stream" not in url, _with_csp)
        return Console(await ctx.new_page(), running_stack.base_url("api"))

    yield make
    for ctx in contexts:
        await ctx.close()
