"""Signaling load: N concurrent consult rooms exchanging messages through the Redis channel layer.

Starts two uvicorn processes (so relays must cross processes through Redis), puts each room's
physician on one and its patient on the other, and measures the round trip of a signaling
message (physician -> patient -> physician). Ramps the number of rooms until p99 passes the
budget or a step fails, and prints p50/p99 per step and the most rooms held within budget.

    REDIS_URL=redis://127.0.0.1:6379/8 python bench/signaling.py [--steps 25,50,100,200,400]
"""

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.asgi_servers import (  # noqa: E402
    open_consult,
    recv_type,
    session_for,
    start_servers,
    stop_servers,
)


def setup_django(db_path: Path) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "telehealth.settings.local"
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{db_path}")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def make_rooms(count: int) -> list[tuple[int, str, str]]:
    """Create ``count`` in-consult visits; return (visit id, physician cookie, patient cookie)."""
    from consults.services import visit_admit, visit_join_on_demand
    from telehealth.models import Role, User

    rooms = []
    stamp = int(time.time() * 1000)
    for i in range(count):
        doctor = User.objects.create_user(
            f"bench-dr-{stamp}-{i}@bench.local", None, role=Role.PHYSICIAN, serves_on_demand=True
        )
        patient = User.objects.create_user(f"bench-pt-{stamp}-{i}@bench.local", None)
        visit = visit_admit(
            visit=visit_join_on_demand(patient=patient, reason="bench"), physician=doctor
        )
        rooms.append((visit.pk, session_for(doctor), session_for(patient)))
    return rooms


async def run_room(room, servers, rounds: int, rtts: list[float], errors: list[str]) -> None:
    visit_id, doctor_session, patient_session = room
    try:
        doctor = await open_consult(servers[0], visit_id, doctor_session)
        patient = await open_consult(servers[1], visit_id, patient_session)
        sdp = "v=0\r\n" + "a=candidate:bench\r\n" * 40  # a realistic offer is a few KB

        async def echo():
            for _ in range(rounds):
                offer = await recv_type(patient, "signal")
                answer = {"type": "answer", "sdp": offer["description"]["sdp"][:200]}
                await patient.send(
                    json.dumps({"type": "signal", "session": "p", "description": answer})
                )

        echo_task = asyncio.create_task(echo())
        for _ in range(rounds):
            started = time.perf_counter()
            message = {
                "type": "signal",
                "session": "d",
                "description": {"type": "offer", "sdp": sdp},
            }
            await doctor.send(json.dumps(message))
            await recv_type(doctor, "signal")
            rtts.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.05)
        await echo_task
        await doctor.close()
        await patient.close()
    except Exception as exc:  # noqa: BLE001 - a bench reports every failure and carries on
        errors.append(f"{type(exc).__name__}: {exc}")


async def step(rooms, servers, rounds: int) -> tuple[list[float], list[str], float]:
    rtts: list[float] = []
    errors: list[str] = []
    started = time.perf_counter()
    try:
        await asyncio.wait_for(
            asyncio.gather(*(run_room(r, servers, rounds, rtts, errors) for r in rooms)),
            timeout=120,
        )
    except TimeoutError:
        expected = len(rooms) * rounds
        errors.append(f"step timed out: {len(rtts)} of {expected} round trips completed")
    return rtts, errors, time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="25,50,100,200,400")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--budget-ms", type=float, default=250.0, help="p99 round-trip budget")
    parser.add_argument("--server-logs", type=Path, help="folder for the servers' output")
    args = parser.parse_args()
    if not os.environ.get("REDIS_URL"):
        sys.exit(
            "Set REDIS_URL (e.g. redis://127.0.0.1:6379/8): the bench measures the Redis layer"
        )
    workdir = Path(tempfile.mkdtemp(prefix="bench-signaling-"))
    os.environ["TELEHEALTH_VAR_DIR"] = str(workdir)
    os.environ["CHANNELS_PREFIX"] = f"bench{os.getpid()}"
    setup_django(workdir / "bench.sqlite3")
    steps = [int(s) for s in args.steps.split(",")]
    all_rooms = make_rooms(max(steps))
    ports = [8811, 8812]
    servers = start_servers(2, {**os.environ}, ports=ports, log_dir=args.server_logs)
    try:
        from django.conf import settings

        backend = settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1]
        print(f"two uvicorn processes (ports {ports}), {backend} on {os.environ['REDIS_URL']}")
        header = ("rooms", "msgs", "p50 ms", "p99 ms", "max ms", "errors", "secs")
        widths = (6, 6, 8, 8, 8, 6, 6)
        print(" ".join(f"{name:>{width}}" for name, width in zip(header, widths, strict=True)))
        held = 0
        for count in steps:
            rtts, errors, secs = asyncio.run(step(all_rooms[:count], servers, args.rounds))
            if rtts:
                p50, p99 = statistics.median(rtts), percentile(rtts, 0.99)
                print(
                    f"{count:>6} {len(rtts):>6} {p50:>8.1f} {p99:>8.1f} {max(rtts):>8.1f} "
                    f"{len(errors):>6} {secs:>6.1f}"
                )
            else:
                p99 = float("inf")
                print(f"{count:>6} {0:>6} {'-':>8} {'-':>8} {'-':>8} {len(errors):>6} {secs:>6.1f}")
            if errors:
                print("  first error:", errors[0])
            if errors or p99 > args.budget_ms:
                break
            held = count
        print(f"rooms held within p99 <= {args.budget_ms:.0f} ms and no errors: {held}")
    finally:
        stop_servers(servers)


if __name__ == "__main__":
    main()
