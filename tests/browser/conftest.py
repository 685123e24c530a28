"""A real ASGI server (uvicorn, HTTP + WebSockets) in a thread, and headless Debian Chromium."""

import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
import uvicorn

from tests.asgi_servers import PRODUCTION_WS_PER_MESSAGE_DEFLATE

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--autoplay-policy=no-user-gesture-required",
    # Two browser processes on one host must see each other's host candidates as plain IPs.
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]


@pytest.fixture
def live_asgi(transactional_db):
    """Serve the real ASGI application (Django + Channels) on a free loopback port."""
    from telehealth.asgi import application

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        application,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        ws_per_message_deflate=PRODUCTION_WS_PER_MESSAGE_DEFLATE,  # as the Procfile runs it
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("The ASGI test server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def playwright_driver():
    if not shutil.which(CHROMIUM):
        pytest.fail("Debian's chromium is required for browser tests: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


def _launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


@pytest.fixture(scope="module")
def browser(playwright_driver):
    browser = _launch(playwright_driver)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def second_browser(playwright_driver):
    """A separate Chromium process, as a second person on another device would have."""
    browser = _launch(playwright_driver)
    yield browser
    browser.close()


def sign_in(page, base_url: str, email: str, password: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("domcontentloaded")


def in_thread(fn, /, **kwargs):
    """Run ORM work off the main thread, where Playwright's event loop is running."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    def call():
        try:
            return fn(**kwargs)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(call).result()


SPEECH = Path(__file__).resolve().parent.parent / "fixtures" / "audio" / "chest_pain.wav"


@pytest.fixture
def speaking_patient_browser(playwright_driver):
    """Chromium whose fake microphone says a red-flag sentence (chest pain, penicillin), looped."""
    browser = playwright_driver.chromium.launch(
        executable_path=CHROMIUM,
        args=[*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={SPEECH}"],
        headless=True,
    )
    yield browser
    browser.close()


@pytest.fixture
def tiny_worker(live_asgi, tmp_path):
    """A real Celery worker with Whisper tiny.en, on the live server's database and broker."""
    from tests.workers import start_worker, stop_worker

    process = start_worker(tmp_path / "worker.log", extra_env={"SPEECH_MODEL": "tiny.en"})
    yield process
    stop_worker(process)
