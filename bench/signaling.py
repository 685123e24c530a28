"""Signaling load: N concurrent consult rooms exchanging messages through the Redis channel layer.

Starts two uvicorn processes (so relays must cross processes through Redis), puts each room's
physician on one and its patient on the other, and measures the round trip of a signaling
message (physician -> patient -> physician): while the step's rooms are still connecting, and
then with all of them open. Per step it prints connects/s, p50/p95/p99 with all sockets open,
p50/p99 while rooms connect, errors, the CPU seconds each server process used, the share of
5 ms bins in which no round trip started ("quiet": how bunched the load came), and at the end
the most rooms held within the p99 budget.

``--baseline REF`` runs the same steps first against the consumer of an older commit (its tree
exported with ``git archive``, same database, same Redis), so both sets of figures come from one
invocation on one machine state.

    REDIS_URL=redis://127.0.0.1:6379/8 python bench/signaling.py --steps 100,200 --baseline HEAD~3
"""

import argparse
import asyncio
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
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

SDP = "v=0\r\n" + "a=candidate:bench\r\n" * 40  # a realistic offer is a few KB
GAP_S = 0.05  # between one room's round trips (closed loop)


class Pacing:
    """When a room's next round trip starts. Closed loop (the default): GAP_S after the last one
    ended, so the load rises until the servers saturate and the figures measure capacity. Paced
    (``period``): every ``period`` seconds from a random phase, whatever the last one took, so
    the load is fixed (rooms / period round trips a second) and the figures measure latency at
    that load."""

    def __init__(self, period: float | None) -> None:
        self.period = period
        self.due = time.perf_counter() + (random.uniform(0, period) if period else 0.0)

    async def first(self) -> None:
        if self.period:
            await asyncio.sleep(max(0.0, self.due - time.perf_counter()))

    async def next(self) -> None:
        if not self.period:
            await asyncio.sleep(GAP_S)
            return
        self.due += self.period
        await asyncio.sleep(max(0.0, self.due - time.perf_counter()))


ROUND_TRIP_TIMEOUT_S = 15  # a lost message is an error, not a hung step


def setup_django(db_path: Path) -> None:
    # The servers run as a clinic runs them: production settings (DEBUG off: no per-query
    # recording), over plain ws:// on loopback; the bench's sessions carry no second factor.
    os.environ["DJANGO_SETTINGS_MODULE"] = "telehealth.settings.production"
    os.environ.setdefault("DJANGO_SECRET_KEY", f"bench-only-{os.getpid()}-not-a-secret")
    os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "false")
    os.environ.setdefault("STAFF_TWO_FACTOR_REQUIRED", "false")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{db_path}")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def make_rooms(count: int) -> list[tuple[int, str, str]]:
    """Create ``count`` in-consult visits; return (visit id, physician cookie, patient cookie)."""
    from consults.booking.services import visit_join_on_demand
    from consults.room.services import visit_admit
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


@dataclass
class Step:
    open_rtts: list[float] = field(default_factory=list)
    open_starts: list[float] = field(default_factory=list)  # perf_counter() at each start
    connecting_rtts: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    connected: int = 0
    connect_secs: float = 0.0
    secs: float = 0.0
    cpu: list[float] = field(default_factory=list)


async def round_trip(doctor, echo_task) -> float:
    started = time.perf_counter()
    message = {"type": "signal", "session": "d", "description": {"type": "offer", "sdp": SDP}}
    await doctor.send(json.dumps(message))
    try:
        await recv_type(doctor, "signal", ROUND_TRIP_TIMEOUT_S)
    except TimeoutError:
        if echo_task.done() and echo_task.exception():
            raise echo_task.exception() from None  # the patient's side failed: say how
        raise TimeoutError(f"no answer within {ROUND_TRIP_TIMEOUT_S} s") from None
    return (time.perf_counter() - started) * 1000


async def echo(patient) -> None:
    """The patient answers every offer until its socket closes."""
    while True:
        offer = await recv_type(patient, "signal")
        answer = {"type": "answer", "sdp": offer["description"]["sdp"][:200]}
        await patient.send(json.dumps({"type": "signal", "session": "p", "description": answer}))


async def run_room(
    room, servers, rounds: int, result: Step, all_open: asyncio.Event, total: int, period
):
    visit_id, doctor_session, patient_session = room
    try:
        doctor = await open_consult(servers[0], visit_id, doctor_session)
        patient = await open_consult(servers[1], visit_id, patient_session)
    except Exception as exc:  # noqa: BLE001 - a bench reports every failure and carries on
        result.errors.append(f"connect: {type(exc).__name__}: {exc}")
        total_done = result.connected + len(result.errors)
        if total_done >= total:
            all_open.set()
        return
    result.connected += 1
    if result.connected + len(result.errors) >= total:
        all_open.set()
    echo_task = asyncio.create_task(echo(patient))
    pacing = Pacing(period)
    try:
        await pacing.first()
        # Round trips while other rooms of the step are still connecting...
        while not all_open.is_set():
            result.connecting_rtts.append(await round_trip(doctor, echo_task))
            await pacing.next()
        # ...then with every socket open.
        for _ in range(rounds):
            result.open_starts.append(time.perf_counter())
            result.open_rtts.append(await round_trip(doctor, echo_task))
            await pacing.next()
    except Exception as exc:  # noqa: BLE001
        result.errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        echo_task.cancel()
        await doctor.close()
        await patient.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process and the processes it started (a server that
    runs its application in a worker child counts the child), from Linux /proc."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += cpu_seconds(int(child))
    except (FileNotFoundError, ProcessLookupError):
        pass  # exited between the listing and the read
    return total


async def step(rooms, servers, rounds: int, period: float | None) -> Step:
    result = Step()
    all_open = asyncio.Event()
    cpu_before = [cpu_seconds(s.process.pid) for s in servers]
    client_before = time.process_time()
    started = time.perf_counter()

    async def mark_connected():
        await all_open.wait()
        result.connect_secs = time.perf_counter() - started

    marker = asyncio.create_task(mark_connected())
    try:
        await asyncio.wait_for(
            asyncio.gather(
                *(run_room(r, servers, rounds, result, all_open, len(rooms), period) for r in rooms)
            ),
            timeout=180,
        )
    except TimeoutError:
        result.errors.append(f"step timed out: {len(result.open_rtts)} round trips completed")
    marker.cancel()
    result.secs = time.perf_counter() - started
    result.cpu = [cpu_seconds(s.process.pid) - b for s, b in zip(servers, cpu_before, strict=True)]
    result.cpu.append(time.process_time() - client_before)
    return result


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


HEADER = (
    ("consumer", 9),
    ("rooms", 6),
    ("conn/s", 7),
    ("rt/s", 6),
    ("open p50", 9),
    ("p95", 7),
    ("p99", 7),
    ("connecting n", 13),
    ("p50", 7),
    ("p99", 7),
    ("errors", 6),
    ("cpu s", 14),
    ("quiet", 6),
    ("secs", 5),
)


QUIET_BIN_S = 0.005


def quiet_share(starts: list[float]) -> float:
    """The share of 5 ms bins, from the first round trip started with all sockets open to the
    last, in which none started. Near 0 for a load spread in time; a closed loop whose rooms
    fall into step (each sends again 50 ms after its answer) leaves half the bins empty and
    crowds the rest: the waves of docs/signaling.md."""
    if len(starts) < 2:
        return float("nan")
    first = min(starts)
    used = {int((start - first) / QUIET_BIN_S) for start in starts}
    return 1 - len(used) / (max(used) + 1)


def row(label: str, count: int, result: Step) -> str:
    rate = result.connected / result.connect_secs if result.connect_secs else float("nan")
    open_secs = result.secs - result.connect_secs
    o, c = result.open_rtts, result.connecting_rtts
    cells = (
        label,
        count,
        f"{rate:.0f}",
        f"{len(o) / open_secs:.0f}" if open_secs > 0 else "nan",
        f"{statistics.median(o) if o else float('nan'):.1f}",
        f"{percentile(o, 0.95):.1f}",
        f"{percentile(o, 0.99):.1f}",
        len(c),
        f"{statistics.median(c) if c else float('nan'):.1f}",
        f"{percentile(c, 0.99):.1f}",
        len(result.errors),
        "/".join(f"{cpu:.1f}" for cpu in result.cpu),
        f"{quiet_share(result.open_starts):.0%}",
        f"{result.secs:.0f}",
    )
    return " ".join(f"{cell:>{width}}" for cell, (_, width) in zip(cells, HEADER, strict=True))


def export_tree(ref: str) -> Path:
    """The source tree of ``ref`` in a temporary folder (``git archive``: no worktree state)."""
    target = Path(tempfile.mkdtemp(prefix="bench-baseline-"))
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref], cwd=ROOT, check=True, capture_output=True
    ).stdout
    archive_path = target / "tree.tar"
    archive_path.write_bytes(archive)
    with tarfile.open(archive_path) as tar:
        tar.extractall(target, filter="data")
    archive_path.unlink()
    return target


def client_loop():
    """uvloop where installed (uvicorn's standard extras bring it, and the servers run on it):
    the client stands in for browsers on other machines, so the less of the two cores it takes
    from the servers, the closer the figures are to theirs."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run_steps(
    variants, steps, all_rooms, rounds, budget_ms, log_dir, period=None
) -> dict[str, list]:
    """Every variant's servers up at once (idle while another is measured); each step runs on
    each variant in turn, so a change in the machine's load hits both sides alike."""
    servers = {}
    results: dict[str, list] = {label: [] for label, _, _ in variants}
    try:
        for n, (label, tree, options) in enumerate(variants):
            ports = [8811 + 2 * n, 8812 + 2 * n]
            # NAME=value words set the servers' environment; the rest are uvicorn options.
            env = dict(o.split("=", 1) for o in options if "=" in o and not o.startswith("-"))
            flags = tuple(o for o in options if o.startswith("-") or "=" not in o)
            servers[label] = start_servers(
                2, {**os.environ, **env}, ports=ports, log_dir=log_dir, cwd=tree, options=flags
            )
        live = [label for label, _, _ in variants]
        for count in steps:
            for label in list(live):
                gc.disable()
                try:
                    with asyncio.Runner(loop_factory=client_loop()) as runner:
                        result = runner.run(step(all_rooms[:count], servers[label], rounds, period))
                finally:
                    gc.enable()
                    gc.collect()
                results[label].append((count, result))
                print(row(label, count, result), flush=True)
                if result.errors:
                    print("  first error:", result.errors[0])
                if result.errors or percentile(result.open_rtts, 0.99) > budget_ms * 20:
                    live.remove(label)  # far past the budget: its next step says nothing new
    finally:
        for pair in servers.values():
            stop_servers(pair)
    return results


def held(results, budget_ms: float) -> int:
    best = 0
    for count, result in results:
        if result.errors or not result.open_rtts or percentile(result.open_rtts, 0.99) > budget_ms:
            break
        best = count
    return best


COLOURS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14))


def write_chart(results: dict[str, list], budget_ms: float, path: Path) -> None:
    """p99 round trip (all sockets open: solid; while rooms connect: dashed) against rooms, one
    colour per consumer/variant, the budget as a grey line; a log scale for the milliseconds."""
    import math

    from PIL import Image, ImageDraw, ImageFont

    width, height, left, right, top, bottom = 1000, 560, 80, 300, 40, 60
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    try:
        font = ImageFont.truetype("DejaVuSans.ttf", 14)
    except OSError:
        font = ImageFont.load_default()
    series = {
        label: [
            (count, percentile(r.open_rtts, 0.99), percentile(r.connecting_rtts, 0.99))
            for count, r in rows
            if r.open_rtts
        ]
        for label, rows in results.items()
    }
    counts = sorted({c for rows in series.values() for c, _, _ in rows}) or [1]
    values = [v for rows in series.values() for _, o, c in rows for v in (o, c) if v == v]
    low = 10 ** math.floor(math.log10(max(1.0, min(values + [budget_ms]))))
    high = 10 ** math.ceil(math.log10(max(values + [budget_ms * 2])))

    def x(count):
        span = (counts[-1] - counts[0]) or 1
        return left + (width - left - right) * (count - counts[0]) / span

    def y(ms):
        ms = min(max(ms, low), high)
        frac = (math.log10(ms) - math.log10(low)) / (math.log10(high) - math.log10(low))
        return height - bottom - (height - top - bottom) * frac

    draw.rectangle((left, top, width - right, height - bottom), outline="black")
    tick = low
    while tick <= high:
        draw.line((left, y(tick), width - right, y(tick)), fill=(225, 225, 225))
        draw.text((left - 8, y(tick)), f"{tick:g}", fill="black", font=font, anchor="rm")
        tick *= 10
    for count in counts:
        draw.text((x(count), height - bottom + 8), str(count), fill="black", font=font, anchor="mt")
    draw.line((left, y(budget_ms), width - right, y(budget_ms)), fill=(150, 150, 150), width=2)
    draw.text((width - right + 6, y(budget_ms)), f"budget {budget_ms:g} ms", fill="grey", font=font)
    draw.text(
        (left, 12), "p99 signaling round trip (ms, log scale) vs rooms", fill="black", font=font
    )
    draw.text(((left + width - right) / 2, height - 24), "rooms", fill="black", font=font)
    for n, (label, rows) in enumerate(series.items()):
        colour = COLOURS[n % len(COLOURS)]
        for kind, pick in (("open", 1), ("connecting", 2)):
            points = [(x(row[0]), y(row[pick])) for row in rows if row[pick] == row[pick]]
            if len(points) > 1:
                if kind == "open":
                    draw.line(points, fill=colour, width=3)
                else:
                    for a, b in zip(points, points[1:], strict=False):  # dashed
                        for i in range(0, 10, 2):
                            draw.line(
                                (
                                    a[0] + (b[0] - a[0]) * i / 10,
                                    a[1] + (b[1] - a[1]) * i / 10,
                                    a[0] + (b[0] - a[0]) * (i + 1) / 10,
                                    a[1] + (b[1] - a[1]) * (i + 1) / 10,
                                ),
                                fill=colour,
                                width=2,
                            )
            for px, py in points:
                draw.ellipse((px - 4, py - 4, px + 4, py + 4), fill=colour)
            legend_y = top + 10 + 40 * n + (18 if kind == "connecting" else 0)
            style = "solid: all open" if kind == "open" else "dashed: connecting"
            draw.text((width - right + 6, legend_y), f"{label} ({style})", fill=colour, font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="25,50,100,200,300,400,500")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--budget-ms", type=float, default=50.0, help="p99 round-trip budget")
    parser.add_argument(
        "--baseline",
        metavar="REF",
        action="append",
        default=[],
        help="also run this commit's consumer; repeatable",
    )
    parser.add_argument(
        "--pace",
        type=float,
        metavar="SECONDS",
        help="a round trip per room every SECONDS (fixed load) instead of the closed loop",
    )
    parser.add_argument(
        "--chart",
        type=Path,
        default=Path("signaling-p99.png"),
        help="where to write the PNG chart of p99 against rooms",
    )
    parser.add_argument("--server-logs", type=Path, help="folder for the servers' output")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="LABEL=OPTIONS",
        help="also run the current consumer with these uvicorn options and NAME=value "
        "environment settings (e.g. 'wsproto=--ws wsproto', "
        "'stock=CHANNELS_BACKEND=channels_redis.pubsub.RedisPubSubChannelLayer'); repeatable",
    )
    args = parser.parse_args()
    if not os.environ.get("REDIS_URL"):
        sys.exit(
            "Set REDIS_URL (e.g. redis://127.0.0.1:6379/8): the bench measures the Redis layer"
        )
    workdir = Path(tempfile.mkdtemp(prefix="bench-signaling-"))
    os.environ["TELEHEALTH_VAR_DIR"] = str(workdir)
    os.environ["CHANNELS_PREFIX"] = f"bench{os.getpid()}"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    setup_django(workdir / "bench.sqlite3")
    steps = [int(s) for s in args.steps.split(",")]
    all_rooms = make_rooms(max(steps))
    # The client is a stand-in for browsers on other machines: its own collector pausing all of
    # its sockets at once (60-140 ms with Django loaded) is not the servers' latency. Start-up
    # objects are frozen, and each step runs with the collector off (collected in between).
    gc.collect()
    gc.freeze()
    from django.conf import settings

    backend = settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1]
    database = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    print(
        f"two uvicorn processes, {backend} on {os.environ['REDIS_URL']}, {database}; "
        f"{args.rounds} round trips per room with all sockets open, "
        + (
            f"one every {args.pace:g} s per room (fixed load); "
            if args.pace
            else f"each {GAP_S * 1000:.0f} ms after the last (closed loop: up to capacity); "
        )
        + "rt/s: round trips a second with all sockets open; "
        "times in ms; connecting n: round trips made while the step's rooms were still connecting; "
        "cpu s: CPU seconds of server 1/server 2/this client in the step; "
        "quiet: share of 5 ms bins with all sockets open in which no round trip started"
    )
    print(" ".join(f"{name:>{width}}" for name, width in HEADER))
    variants = [("current", ROOT, ())]
    for n, ref in enumerate(args.baseline):
        variants.insert(n, (ref[:9], export_tree(ref), ()))
    for variant in args.variant:
        label, _, options = variant.partition("=")
        variants.append((label[:9], ROOT, tuple(options.split())))
    results = run_steps(
        variants, steps, all_rooms, args.rounds, args.budget_ms, args.server_logs, args.pace
    )
    for label, variant_results in results.items():
        rooms = held(variant_results, args.budget_ms)
        print(f"{label}: most rooms held within p99 <= {args.budget_ms:.0f} ms, no errors: {rooms}")
    write_chart(results, args.budget_ms, args.chart)
    print(f"chart: {args.chart}")


if __name__ == "__main__":
    main()
