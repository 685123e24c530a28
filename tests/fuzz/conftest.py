"""Fuzz suite plumbing: every test here is marked ``fuzz``, has its peak memory checked against
its module's ``MEMORY_BOUND_MIB`` (or its own ``@memory_bound``), and the run ends with how many
inputs each target was tried on."""

import pytest

from tests.fuzz import support

DEFAULT_MEMORY_BOUND_MIB = 256


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/fuzz/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.fuzz)


@pytest.fixture(autouse=True)
def _bounded_memory(request):
    """Fail the test when its peak RSS rises more than its bound over where it started."""
    if not support.reset_peak_rss():  # no /proc (not Linux): nothing to measure
        yield
        return
    bound = getattr(request.module, "MEMORY_BOUND_MIB", DEFAULT_MEMORY_BOUND_MIB)
    bound = getattr(request.function, "memory_bound_mib", bound) * support.MiB
    start = support.rss()
    yield
    peak, end = support.peak_rss() - start, support.rss() - start
    support.MEMORY[request.node.name] = (peak, end, bound)
    assert peak <= bound, (
        f"peak RSS rose {peak / support.MiB:.0f} MiB during the test; "
        f"the bound is {bound / support.MiB:.0f} MiB"
    )


def pytest_terminal_summary(terminalreporter):
    if not support.COUNTS:
        return
    write = terminalreporter.write_line
    terminalreporter.section("fuzz summary")
    for target, count in sorted(support.COUNTS.items()):
        write(f"{count:7d}  {target}")
    for test, (peak, end, bound) in sorted(support.MEMORY.items()):
        write(
            f"memory  {test}: peak +{peak / support.MiB:.0f} MiB (bound {bound / support.MiB:.0f}),"
            f" retained +{end / support.MiB:.0f} MiB"
        )
    total = sum(support.COUNTS.values())
    write(f"fuzzed {total} inputs across {len(support.COUNTS)} targets")
