import re

import pytest
from django.core import mail
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_signup_defaults_to_the_browsers_time_zone_and_activates_by_link(live_asgi, browser):
    context = browser.new_context(timezone_id="America/Chicago")
    page = context.new_page()
    page.goto(f"{live_asgi}/accounts/signup/")
    expect(page.get_by_label("Time zone")).to_have_value("America/Chicago")

    page.get_by_label("Email").fill("ada.browser@example.org")
    page.get_by_label("First name").fill("Ada")
    page.get_by_label("Last name").fill("Lovelace")
    page.locator("#id_password1").fill("a-long-passphrase-42")
    page.locator("#id_password2").fill("a-long-passphrase-42")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Check your e-mail")).to_be_visible()

    (message,) = mail.outbox
    (link,) = re.findall(r"https?://\S+", message.body)
    page.goto(link)
    page.get_by_role("button", name="Activate my account").click()
    expect(page.get_by_text("Your account is active.")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Sign out"))).to_be_visible()
    context.close()
