"""Fleet files: profiles, defaults, aliases, scaling and fault fractions."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from simulator.fleet import Fleet, FleetFileError, load_fleet_file, scale_counts

REPO = Path(__file__).resolve().parents[3]


def test_demo_fleet_has_the_promised_mix() -> None:
    specs, _ = load_fleet_file(REPO / "config" / "fleet-demo.toml")
    by_name = {s.name: s for s in specs}
    assert by_name["cortex-m4f-256k"].template.profile.fpu is True
    m0 = by_name["cortex-m0plus-64k"].template
    assert (m0.profile.fpu, m0.profile.ram_total) == (False, 65536)
    assert by_name["ethos-u55-128"].template.profile.accelerator == "ethos-u55-128"
    assert by_name["nbiot-queue"].template.queue_mode is True
    old = by_name["lwm2m10-tlv"].template
    assert (old.lwm2m_version, old.delivery, old.skip_downloading_state) == ("1.0", "push", True)
    assert by_name["tiny-m0-16k"].template.profile.ram_free_ml < 16 * 1024
    assert all(s.template.profile.runtime == "tflm-2024" for s in specs)  # from [defaults]


def test_small_fleet_loads() -> None:
    fleet = Fleet.from_toml(REPO / "config" / "fleet-small.toml", "coap://127.0.0.1:5683")
    assert [d.endpoint for d in fleet.devices] == [
        "small-cortex-m4f-256k-0000",
        "small-cortex-m4f-256k-0001",
        "small-lwm2m10-tlv-0000",
    ]


def test_scaling_keeps_proportions_and_total() -> None:
    specs, _ = load_fleet_file(REPO / "config" / "fleet-demo.toml")
    counts = scale_counts(specs, 500)
    assert sum(counts) == 500
    assert counts[0] == max(counts)  # the largest profile stays the largest
    assert scale_counts(specs, None) == [s.count for s in specs]
    assert sum(scale_counts(specs, 1)) == 1


def test_fault_fraction_is_applied_to_that_share(tmp_path: Path) -> None:
    path = tmp_path / "f.toml"
    path.write_text(
        '[fleet]\nseed = 3\n[faults]\nfraction = 0.25\nloss_pct = 10.0\n[[profiles]]\nname = "a"\ncount = 40\n'
    )
    fleet = Fleet.from_toml(path, "coap://127.0.0.1:5683")
    faulty = Counter(d.config.faults.loss_pct for d in fleet.devices)
    assert faulty == {10.0: 10, 0.0: 30}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[profiles]]\ncount = 1\n", "needs a name"),
        ('[[profiles]]\nname = "a"\ncount = -1\n', "count"),
        ('[[profiles]]\nname = "a"\nwarp_drive = 1\n', "warp_drive"),
        ('[[profiles]]\nname = "a"\nlwm2m_version = "2.0"\n', "lwm2m_version"),
        ("[fleet]\n", "at least one"),
        ("not toml [", "f.toml"),
    ],
)
def test_bad_fleet_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "f.toml"
    path.write_text(text)
    with pytest.raises(FleetFileError, match=message):
        Fleet.from_toml(path, "coap://127.0.0.1:5683")


def test_fleet_sizes_use_the_one_size_parser(tmp_path: Path) -> None:
    path = tmp_path / "f.toml"
    path.write_text('[[profiles]]\nname = "m4"\nram = "256KiB"\nram_ml = "160k"\nflash = "1MiB"\nflash_free = 524288\n')
    (spec,) = load_fleet_file(path)[0]
    hw = spec.template.profile
    assert (hw.ram_total, hw.ram_free_ml, hw.flash_total, hw.flash_free) == (262_144, 163_840, 1_048_576, 524_288)
    path.write_text('[[profiles]]\nname = "m4"\nram = "lots"\n')
    with pytest.raises(FleetFileError, match="profile 1: ram_total: 'lots' is not a size"):
        load_fleet_file(path)
