"""The cache sizes the kernels plan with (include/cyrelu/cache.h): the environment
overrides, what the OS reports, the fallbacks for what it cannot or does not report
sensibly, and the thresholds derived from them."""

import os
import subprocess
import sys

import pytest

import cyrelu
from cyrelu import _parallel

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30

pytestmark = pytest.mark.kernel_choice


@pytest.mark.parametrize(
    "text,expected",
    [
        ("524288", 524288),
        ("512K", 512 * KiB),
        ("512k", 512 * KiB),
        ("512KiB", 512 * KiB),
        ("2M", 2 * MiB),
        ("2MB", 2 * MiB),
        ("1G", GiB),
        (" 1M ", MiB),
        ("", -1),
        ("junk", -1),
        ("-1", -1),
        ("1.5M", -1),
        ("12Q", -1),
        ("M", -1),
        ("99999999999999999999", -1),
    ],
)
def test_size_syntax(text, expected):
    assert _parallel._parse_bytes(text) == expected


def test_pick_prefers_a_plausible_override():
    assert _parallel._cache_pick(2, 2 * MiB, 512 * KiB) == (2 * MiB, "environment")
    assert _parallel._cache_pick(3, 64 * MiB, 32 * MiB, 512 * KiB) == (64 * MiB, "environment")


@pytest.mark.parametrize("env", [-1, 0, 100, 1 << 40])
def test_pick_ignores_an_unusable_override(env):
    assert _parallel._cache_pick(2, env, 512 * KiB) == (512 * KiB, "OS")


@pytest.mark.parametrize("reported", [0, -1, 1, 4 * KiB, 1 << 40])
def test_pick_falls_back_when_the_os_reports_nothing_or_nonsense(reported):
    """Containers, VMs and many arm64 kernels report 0 or nothing; some report a
    socket-wide or garbage value: the planner then uses its documented fallback."""
    assert _parallel._cache_pick(2, -1, reported) == (MiB, "fallback")
    size, src = _parallel._cache_pick(3, -1, reported, MiB)
    assert src == "fallback" and size == 8 * MiB


def test_l3_smaller_than_l2_is_nonsense():
    assert _parallel._cache_pick(3, -1, 256 * KiB, MiB) == (8 * MiB, "fallback")
    # a fallback L3 is never below the L2 in force
    assert _parallel._cache_pick(3, -1, 0, 16 * MiB)[0] >= 16 * MiB


def test_thresholds_follow_the_l2_in_force():
    c = _parallel.cache_info()
    assert 64 * KiB <= c["l2_bytes"] <= 64 * MiB
    assert c["l3_bytes"] >= c["l2_bytes"]
    assert c["cpus"] >= 1
    assert c["stream_min_bytes"] == max(c["l2_bytes"] // 2, c["l3_bytes"] // (2 * c["cpus"]))
    assert c["slab_bytes"] == c["l2_bytes"] // 2
    assert c["l2_source"] in ("environment", "OS", "fallback")


def _mib(n):
    from cyrelu._config import _mib as fmt

    return fmt(n)


def _run(code, **env):
    full = dict(os.environ)
    for key in ("CYRELU_L2_BYTES", "CYRELU_L3_BYTES"):
        full.pop(key, None)
    full.update(env)
    parent = os.path.dirname(os.path.dirname(os.path.abspath(cyrelu.__file__)))
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=full,
        check=True,
        cwd=parent,
    )


def test_overrides_reach_every_module_and_show_config():
    code = (
        "import cyrelu\n"
        "from cyrelu import _parallel\n"
        "c = _parallel.cache_info()\n"
        "print(c['l2_bytes'], c['l2_source'], c['l3_bytes'], c['l3_source'],"
        " c['stream_min_bytes'], c['slab_bytes'])\n"
        "cyrelu.show_config()\n"
    )
    res = _run(code, CYRELU_L2_BYTES="768K", CYRELU_L3_BYTES="48M")
    first = res.stdout.splitlines()[0].split()
    cpus = _parallel.cache_info()["cpus"]
    stream = max(384 * KiB, 48 * MiB // (2 * cpus))
    assert first == [
        str(768 * KiB),
        "environment",
        str(48 * MiB),
        "environment",
        str(stream),
        str(384 * KiB),
    ]
    assert "768 KiB (environment" in res.stdout
    assert "48 MiB (environment" in res.stdout
    assert "streaming stores from %s per thread" % _mib(stream) in res.stdout
    assert res.stderr == ""


def test_an_unusable_override_warns_and_is_ignored():
    code = (
        "import warnings\n"
        "warnings.simplefilter('always')\n"
        "import cyrelu\n"
        "from cyrelu import _parallel\n"
        "c = _parallel.cache_info()\n"
        "print(c['l2_source'], c['l2_env_ignored'])\n"
        "cyrelu.show_config()\n"
    )
    res = _run(code, CYRELU_L2_BYTES="lots")
    assert "CYRELU_L2_BYTES='lots' is not a usable cache size" in res.stderr
    src, ignored = res.stdout.splitlines()[0].split()
    assert src in ("OS", "fallback") and ignored == "True"
    assert "CYRELU_L2_BYTES='lots' ignored" in res.stdout
