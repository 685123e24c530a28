"""Which broker the environment picks: RabbitMQ for production, Redis, or the embedded default."""

import json
import os
import subprocess
import sys

import pytest

SHOW = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'url': s.CELERY_BROKER_URL, 'options': s.CELERY_BROKER_TRANSPORT_OPTIONS, "
    "'queue_type': getattr(s, 'CELERY_TASK_DEFAULT_QUEUE_TYPE', 'classic'), "
    "'ml_queue_type': getattr(s, 'CELERY_TASK_CREATE_MISSING_QUEUE_TYPE', 'classic'), "
    "'layer': s.CHANNEL_LAYERS['default']['BACKEND']}))"
)


def broker_settings(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_URL", "CELERY_"))}
    out = subprocess.run(
        [sys.executable, "-c", SHOW],
        env={**clean, "DJANGO_SETTINGS_MODULE": "telehealth.settings.local", **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("env", "url", "queue_type", "layer"),
    [
        ({}, "filesystem://", "classic", "InMemoryChannelLayer"),
        ({"REDIS_URL": "redis://127.0.0.1:6379/3"}, "redis://127.0.0.1:6379/3", "classic", "Pub"),
        (
            {
                "REDIS_URL": "redis://127.0.0.1:6379/3",
                "CELERY_BROKER_URL": "amqp://telehealth:secret@mq.internal:5672/telehealth",
            },
            "amqp://telehealth:secret@mq.internal:5672/telehealth",
            "quorum",
            "Pub",
        ),
    ],
)
def test_the_environment_picks_the_broker(env, url, queue_type, layer):
    got = broker_settings(**env)
    assert got["url"] == url
    assert got["queue_type"] == got["ml_queue_type"] == queue_type
    assert layer in got["layer"]  # REDIS_URL keeps the channel layer whatever the broker
    if url.startswith("amqp"):
        assert got["options"] == {"confirm_publish": True}  # no Redis visibility timeout
    elif url.startswith("redis"):
        assert got["options"]["visibility_timeout"] == 3600
