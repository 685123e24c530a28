"""A call through TURN only, as behind a hospital firewall: two Chromiums, a real coturn."""

import pytest

from tests.browser.conftest import in_thread, sign_in
from tests.factories import PASSWORD, PatientFactory, PhysicianFactory, admitted_visit
from tests.turn import start_turnserver

pytestmark = pytest.mark.browser

CONNECTED = "() => window.__consultPeer && window.__consultPeer.connectionState === 'connected'"
# The candidate pair the call uses, by its local candidate's type ("relay" through TURN).
SELECTED_LOCAL_TYPE = """async () => {
  const stats = await window.__consultPeer.getStats();
  let pairId = null;
  stats.forEach((r) => { if (r.type === 'transport') pairId = r.selectedCandidatePairId; });
  const pair = pairId && stats.get(pairId);
  const local = pair && stats.get(pair.localCandidateId);
  return local ? local.candidateType : null;
}"""


@pytest.fixture
def turnserver(tmp_path):
    server = start_turnserver(tmp_path)
    yield server
    server.stop()


def _setup():
    physician = PhysicianFactory(email="dr.relay@example.org", serves_on_demand=True)
    patient = PatientFactory(email="pat.relay@example.org")
    return physician, patient, admitted_visit(patient, physician)


def test_relay_only_call_connects_through_coturn(
    live_asgi, browser, second_browser, turnserver, settings
):
    settings.TURN_URLS = [turnserver.url]
    settings.TURN_SECRET = turnserver.secret
    settings.WEBRTC_ICE_TRANSPORT_POLICY = "relay"
    physician, patient, visit = in_thread(_setup)

    pages = []
    for chromium, user in ((browser, patient), (second_browser, physician)):
        page = chromium.new_context().new_page()
        sign_in(page, live_asgi, user.email, PASSWORD)
        page.goto(f"{live_asgi}/visits/{visit.pk}/room/")
        pages.append(page)
    for page in pages:
        page.wait_for_function(CONNECTED, timeout=30_000)
        # With policy "relay" the browser gathers no host candidates at all: the call must
        # have gone through coturn.
        assert page.evaluate(SELECTED_LOCAL_TYPE) == "relay"
