"""Private media storage: the default folder and a private S3 bucket (moto, in process)."""

import boto3
import pytest
from django.conf import settings
from django.test import override_settings
from moto import mock_aws

from telehealth.private_media import (
    private_delete,
    private_read,
    private_response,
    private_save,
    private_storage,
)

S3_STORAGES = {
    **settings.STORAGES,
    "private": {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": "clinic-private",
            "region_name": "eu-central-1",
            "access_key": "testing",
            "secret_key": "testing",
            "location": "private",
            "default_acl": "private",
            "querystring_auth": True,
            "file_overwrite": False,
            "object_parameters": {"ServerSideEncryption": "AES256"},
        },
    },
}


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_folder_storage_round_trip_outside_the_web_root():
    name = private_save(category="photos", data=b"\xff\xd8jpeg bytes", suffix=".jpg")
    assert name.startswith("photos/") and name.endswith(".jpg")
    assert len(name) > len("photos/.jpg") + 30  # 24 random bytes, base64url: not guessable
    on_disk = settings.PRIVATE_MEDIA_ROOT / name
    assert on_disk.read_bytes() == b"\xff\xd8jpeg bytes"
    assert settings.STATIC_ROOT not in on_disk.parents
    assert private_read(name) == b"\xff\xd8jpeg bytes"

    response = private_response(relative=name, content_type="image/jpeg", download_name="p.jpg")
    assert body(response) == b"\xff\xd8jpeg bytes"
    assert response["Cache-Control"] == "private, no-store"

    private_delete(name)
    assert not on_disk.exists()
    private_delete(name)  # already gone: still fine


def test_folder_storage_has_no_public_url():
    name = private_save(category="audio", data=b"x", suffix=".webm")
    with pytest.raises(NotImplementedError):
        private_storage().url(name)


@pytest.mark.parametrize("name", ["../secret", "/etc/passwd", "photos/../../x", "", "a\\..\\b"])
def test_names_that_escape_the_root_are_refused(name):
    with pytest.raises(ValueError):
        private_read(name)
    with pytest.raises(ValueError):
        private_delete(name)


@override_settings(PRIVATE_MEDIA_ACCEL_PREFIX="/_private/")
def test_reverse_proxy_sends_folder_files():
    name = private_save(category="photos", data=b"jpeg", suffix=".jpg")
    response = private_response(relative=name, content_type="image/jpeg", download_name="p.jpg")
    assert response["X-Accel-Redirect"] == f"/_private/{name}"
    assert response.content == b""


@pytest.fixture
def s3_bucket(monkeypatch):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="eu-central-1")
        client.create_bucket(
            Bucket="clinic-private",
            CreateBucketConfiguration={"LocationConstraint": "eu-central-1"},
        )
        with override_settings(STORAGES=S3_STORAGES, PRIVATE_MEDIA_ACCEL_PREFIX="/_private/"):
            yield client


def test_s3_bucket_objects_are_private_encrypted_and_streamed_through_django(s3_bucket):
    name = private_save(category="photos", data=b"\xff\xd8jpeg", suffix=".jpg")
    key = f"private/{name}"
    head = s3_bucket.head_object(Bucket="clinic-private", Key=key)
    assert head["ServerSideEncryption"] == "AES256"
    grants = s3_bucket.get_object_acl(Bucket="clinic-private", Key=key)["Grants"]
    assert [g["Permission"] for g in grants] == ["FULL_CONTROL"]
    assert all("URI" not in g["Grantee"] for g in grants)  # no AllUsers / AuthenticatedUsers

    assert private_read(name) == b"\xff\xd8jpeg"
    # Even with a proxy prefix configured, bucket files are streamed by the authorized view:
    # no redirect, no bucket URL handed to the browser.
    response = private_response(relative=name, content_type="image/jpeg", download_name="p.jpg")
    assert "X-Accel-Redirect" not in response and "Location" not in response
    assert body(response) == b"\xff\xd8jpeg"

    private_delete(name)
    assert s3_bucket.list_objects_v2(Bucket="clinic-private").get("KeyCount") == 0
    private_delete(name)
