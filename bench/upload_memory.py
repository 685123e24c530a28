"""Peak memory of the web process over one photo upload: a decompression bomb and phone photos.

Every upload runs in a fresh child process (Django, the photo form posted through the test
client, as a signed-in patient in a consult), so that no earlier allocation hides in the heap:
the peak RSS (VmHWM, reset through /proc/self/clear_refs just before the POST) minus the RSS at
that moment is what the upload cost. "before" is the same upload with the photo loader of
BASELINE_COMMIT (read from git), "after" with the loader in the working tree; both run the rest of
today's code, so the difference is the loader's.

Usage: python bench/upload_memory.py [--json] [--variants before,after]
Linux only (/proc). tests/test_photos.py runs the "after" child against its test database.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BASELINE_COMMIT = "7055104"  # the photo loader before its decode budget
BOMB_SIDE = 6300  # 39.7 MP: inside the 40 MP limit, 119 MB of RGB, 113 KB as a PNG of zeros
MiB = 2**20


# --- The photos --------------------------------------------------------------------------------


def bomb_png(side: int = BOMB_SIDE) -> bytes:
    """An all-zero RGB PNG, compressed row by row so that making it allocates nothing large."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + 3 * side)  # filter byte, then the pixels
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def phone_jpeg(width: int, height: int, *, rotated: bool = True) -> bytes:
    """A skin photo at a phone camera's size; stored sideways with EXIF orientation 6, as phones
    write portrait photos."""
    from PIL import Image

    source = Image.open(ROOT / "tests" / "fixtures" / "vision" / "ham_nv.jpg").convert("RGB")
    image = source.resize((width, height), Image.Resampling.BICUBIC)
    exif = Image.Exif()
    if rotated:
        exif[0x0112] = 6
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92, exif=exif.tobytes())
    return buffer.getvalue()


PHOTOS = {
    "bomb": (f"{BOMB_SIDE}x{BOMB_SIDE} all-zero PNG", "bomb.png", bomb_png),
    "phone_12mp": ("12 MP phone JPEG, EXIF-rotated", "photo.jpg", lambda: phone_jpeg(4032, 3024)),
    "phone_24mp": ("24 MP phone JPEG, EXIF-rotated", "photo.jpg", lambda: phone_jpeg(5712, 4284)),
}


def write_photos(folder: Path, names=tuple(PHOTOS)) -> dict[str, Path]:
    """Write the photos to files, so that no child makes them (and keeps their heap)."""
    paths = {}
    for name in names:
        path = folder / f"{name}-{PHOTOS[name][1]}"
        path.write_bytes(PHOTOS[name][2]())
        paths[name] = path
    return paths


# --- One upload, in a child process -----------------------------------------------------------


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise OSError(f"{field} not in /proc/self/status")


def _use_baseline_loader(commit: str) -> None:
    """Swap in the loader of ``commit``, raising today's error classes (which the service
    catches) and ignoring the options it did not have."""
    from triage.vision import imageio

    source = subprocess.run(
        ["git", "show", f"{commit}:triage/vision/imageio.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    old = sys.modules["baseline_imageio"] = types.ModuleType("baseline_imageio")
    exec(compile(source, f"{commit}:triage/vision/imageio.py", "exec"), old.__dict__)  # noqa: S102
    for name in ("ImageError", "UnsupportedImage", "CorruptImage", "ImageTooLarge"):
        setattr(old, name, getattr(imageio, name))

    def load_image(data, *, max_bytes, max_pixels=old.DEFAULT_MAX_PIXELS, **_new_options):
        return old.load_image(data, max_bytes=max_bytes, max_pixels=max_pixels)

    imageio.load_image = load_image


def child(*, visit_id: int, photo: Path, variant: str) -> dict:
    """Post ``photo`` to the visit's photo form as its patient; what it cost and what came back."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "telehealth.settings.test")
    import django

    django.setup()
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.urls import reverse

    from consults.models import Visit
    from triage.models import Photo

    setup_test_environment()
    if variant == "before":
        _use_baseline_loader(BASELINE_COMMIT)
    visit = Visit.objects.select_related("patient").get(pk=visit_id)
    client = Client()
    client.force_login(visit.patient)
    url = reverse("triage:photo_add", args=[visit.pk])

    def post(name: str, data: bytes):
        fields = {"kind": "skin", "body_site": "left forearm", "ai_consent": "no"}
        return client.post(url, {**fields, "photos": [SimpleUploadedFile(name, data)]})

    # Warm up (imports, templates, the first queries) with a small photo.
    post("warm.jpg", (ROOT / "tests" / "fixtures" / "vision" / "ham_nv.jpg").read_bytes())
    data = photo.read_bytes()
    before = Photo.objects.count()
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    start = _status_bytes("VmRSS")
    response = post(photo.name, data)
    peak = _status_bytes("VmHWM")
    stored = Photo.objects.count() - before
    rejected = response.context["rejected"] if response.context else []
    return {
        "variant": variant,
        "status": response.status_code,
        "stored": stored,
        "size": list(Photo.objects.values_list("width", "height").last()) if stored else None,
        "refused": [reason for item in rejected for reason in item.reasons],
        "start_mib": round(start / MiB, 1),
        "peak_mib": round(peak / MiB, 1),
        "growth_mib": round((peak - start) / MiB, 1),
    }


def run_child(*, database_url: str, visit_id: int, photo: Path, variant: str) -> dict:
    """Run one measured upload in a fresh interpreter and return its result."""
    env = {**os.environ, "DATABASE_URL": database_url}
    env.setdefault("DJANGO_SETTINGS_MODULE", "telehealth.settings.test")
    command = [sys.executable, __file__, "--child", str(visit_id), str(photo), variant]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"upload child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- The bench ---------------------------------------------------------------------------------


def _database(folder: Path) -> tuple[str, int]:
    """A fresh SQLite database with a patient waiting in the on-demand queue."""
    url = f"sqlite:///{folder / 'bench.sqlite3'}"
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "telehealth.settings.test")
    os.environ.setdefault("TELEHEALTH_PRIVATE_MEDIA_ROOT", str(folder / "media"))
    import django

    django.setup()
    from django.core.management import call_command

    from consults.booking.services import visit_join_on_demand
    from telehealth.models import Role, User

    call_command("migrate", verbosity=0)
    patient = User.objects.create_user("bench-patient@example.org", role=Role.PATIENT)
    visit = visit_join_on_demand(patient=patient, reason="Mole changed")
    return url, visit.pk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    parser.add_argument("--variants", default="before,after")
    args = parser.parse_args()
    variants = args.variants.split(",")
    with tempfile.TemporaryDirectory(prefix="upload-memory-") as tmp:
        folder = Path(tmp)
        database_url, visit_id = _database(folder)
        paths = write_photos(folder)
        sizes = {name: path.stat().st_size for name, path in paths.items()}
        results = {
            name: {
                variant: run_child(
                    database_url=database_url, visit_id=visit_id, photo=path, variant=variant
                )
                for variant in variants
            }
            for name, path in paths.items()
        }
    if args.json:
        print(json.dumps(results, indent=1))
        return
    print(f"Peak RSS of the web process over one photo upload (baseline loader: {BASELINE_COMMIT})")
    for name, by_variant in results.items():
        print(f"\n{PHOTOS[name][0]} ({sizes[name] / 1000:,.0f} KB)")
        for variant, r in by_variant.items():
            if r["stored"]:
                outcome = f"stored {r['size'][0]}x{r['size'][1]}"
            else:
                outcome = "refused: " + "; ".join(r["refused"])
            print(
                f"  {variant:6s} {r['start_mib']:6.0f} -> {r['peak_mib']:6.0f} MiB"
                f" (+{r['growth_mib']:.0f} MiB)  {outcome}"
            )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        visit, photo, variant = sys.argv[2:5]
        print(json.dumps(child(visit_id=int(visit), photo=Path(photo), variant=variant)))
    else:
        main()
