"""The energy model: the arithmetic against a case computed by hand, profiles (shipped and a user's
file) with a source and conditions for every figure, the estimate label on every result, and the
CLI's one-sentence errors.
"""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

import pytest

from crossl_edge.errors import UsageError
from crossl_edge.firmware_bridge import energy
from crossl_edge.firmware_bridge.firmware import generate_firmware

ROOT = Path(__file__).resolve().parents[1]


def _profile_file(tmp_path: Path, kind: str, **changes: object) -> Path:
    d = json.loads((energy.PROFILES / f"{kind}-nrf52840{'-ble' * (kind == 'radio')}.json")
                   .read_text())
    d.update(changes)
    path = tmp_path / f"my-{kind}.json"
    path.write_text(json.dumps({k: v for k, v in d.items() if v is not None}))
    return path


def test_hand_computed_case_on_the_nrf52840_figures(tmp_path: Path) -> None:
    """1 M cycles at 64 MHz, a 100 B frame and 50 samples x 3 axes of int16 per 1 s hop, on the
    nRF52840 (3.3 mA run, 6.40 mA TX, 6.26 mA RX, 3 V, 3.16 uA sleep) over BLE with DLE."""
    mcu = energy.load_mcu(_profile_file(tmp_path, "mcu"))     # a user's file: same figures
    radio = energy.load_radio("nrf52840-ble")
    # Frame: 1 packet, (100 + 17) B x 8 us = 936 us TX; 380 us per packet + 40 us ramp-up RX.
    send = energy.radio_cost(radio, 100)
    assert (send.packets, send.tx_s, send.rx_s) == (1, pytest.approx(936e-6),
                                                    pytest.approx(420e-6))
    assert send.energy_j(radio) == pytest.approx(3.0 * (936e-6 * 6.40e-3 + 420e-6 * 6.26e-3))
    # Raw: 300 B -> 2 packets (244 + 56): (300 + 2 x 17) x 8 = 2672 us TX, 2 x 380 + 40 us RX.
    raw = energy.radio_cost(radio, 300)
    assert (raw.packets, raw.tx_s, raw.rx_s) == (2, pytest.approx(2672e-6), pytest.approx(800e-6))
    e = energy.window_energy(mcu, radio, cycles=1e6, cycles_basis="measured: test",
                             frame_bytes=100, raw_bytes=300, hop_s=1.0)
    enc_uj = 1e6 / 64e6 * 3.3e-3 * 3.0 * 1e6                 # 15.625 ms at 9.9 mW = 154.69 uJ
    send_uj = 3.0 * (936e-6 * 6.40e-3 + 420e-6 * 6.26e-3) * 1e6           # 25.86 uJ
    raw_uj = 3.0 * (2672e-6 * 6.40e-3 + 800e-6 * 6.26e-3) * 1e6           # 66.33 uJ
    assert e["encode"]["energy_uj"] == pytest.approx(enc_uj, abs=0.01)
    assert e["send_frame"]["energy_uj"] == pytest.approx(send_uj, abs=0.01)
    assert e["stream_raw"]["energy_uj"] == pytest.approx(raw_uj, abs=0.01)
    assert e["encode_and_send_uj"] == pytest.approx(enc_uj + send_uj, abs=0.01)
    assert e["ratio_encode_vs_raw"] == pytest.approx((enc_uj + send_uj) / raw_uj, abs=1e-3)
    assert e["cpu_duty_cycle"] == pytest.approx(0.015625)
    # break-even: (raw - send) / (3.3 mA x 3 V) x 64 MHz cycles = 262,400 cycles
    assert e["break_even_cycles"] == round((raw_uj - send_uj) * 1e-6 / 9.9e-3 * 64e6)
    # Battery: 225 mAh = 810 C over (charge per 1 s hop + 3.16 uA sleep).
    q_enc = 15.625e-3 * 3.3e-3 + 936e-6 * 6.40e-3 + 420e-6 * 6.26e-3
    assert e["battery_days"]["encode_and_send"] == pytest.approx(
        810 / (q_enc + 3.16e-6) / 86400, abs=0.05)                    # 148.0 days
    q_raw = 2672e-6 * 6.40e-3 + 800e-6 * 6.26e-3
    assert e["battery_days"]["stream_raw"] == pytest.approx(810 / (q_raw + 3.16e-6) / 86400,
                                                            abs=0.05)
    assert energy.radio_cost(radio, 0).packets == 0


def test_instructions_are_scaled_by_cpi_and_mac_cycles_are_not() -> None:
    mcu, radio = energy.node_profiles("nrf52840")[0]
    hop = energy.hop_of(128, 50.0, hop=64)
    assert (hop.samples, hop.seconds, hop.source) == (64, 1.28, "--hop")
    rec = energy.modality_energy(profiles=[(mcu, radio)], hop=hop, channels=3, frame_bytes=132,
                                 work={"cmsis_nn": (1e6, "measured: x", True),
                                       "reference": (1e6, "estimate from MACs", False)})
    per = rec["profiles"]["nrf52840+nrf52840-ble"]
    assert per["cmsis_nn"]["encode"]["cycles"] == 1_200_000      # 1.2 cycles per instruction
    assert per["reference"]["encode"]["cycles"] == 1_000_000
    assert rec["raw_bytes_per_hop"] == 64 * 3 * 2
    assert energy.hop_of(100, 10.0).samples == 100                  # default: the window
    with pytest.raises(UsageError, match="between 1 and the window"):
        energy.hop_of(100, 10.0, hop=101)


def test_every_shipped_figure_has_a_source_and_conditions() -> None:
    assert energy.shipped("mcu") == ["esp32c3", "nrf52840", "stm32l476"]
    assert energy.shipped("radio") == ["bluenrg-ms-ble", "esp32c3-wifi", "nrf52840-ble"]
    pairs = energy.node_profiles()
    assert [(m.name, r.name) for m, r in pairs] == [
        ("esp32c3", "esp32c3-wifi"), ("nrf52840", "nrf52840-ble"),
        ("stm32l476", "bluenrg-ms-ble")]
    doc = energy.assumptions(pairs)
    assert doc["label"] == "estimate" and len(doc["profiles"]) == 6
    figures = 0
    for prof in doc["profiles"].values():
        for f in [*prof.values(), *prof.get("cell", {}).values()]:
            if isinstance(f, dict) and "value" in f:
                assert f["source"].strip() and f["conditions"].strip() and f["unit"], f
                figures += 1
    assert figures == 3 * (5 + 2) + 3 * 10     # MCU figures + cell; radio figures
    # the wheel ships the profiles: pyproject's package-data glob covers them
    data = re.search(r'\[tool\.setuptools\.package-data\]\n"\*" = \[(.*?)\]',
                     (ROOT / "pyproject.toml").read_text(), re.S)
    globs = re.findall(r'"([^"]+)"', data.group(1))
    for p in energy.PROFILES.glob("*.json"):
        assert any(fnmatch.fnmatch(f"profiles/{p.name}", g) for g in globs), p.name


def test_unknown_and_malformed_profiles_are_one_sentence_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"unknown MCU profile 'nrf9160'; use one of esp32c3, "):
        energy.load_mcu("nrf9160")
    with pytest.raises(UsageError, match="unknown RADIO profile"):
        energy.load_radio("lora")
    with pytest.raises(UsageError, match="is not a valid MCU profile: 'run_current' is missing"):
        energy.load_mcu(_profile_file(tmp_path, "mcu", run_current=None))
    bad = _profile_file(tmp_path, "radio")
    d = json.loads(bad.read_text())
    d["tx_current"]["source"] = " "
    bad.write_text(json.dumps(d))
    with pytest.raises(UsageError, match="tx_current.source must say where the figure comes"):
        energy.load_radio(bad)
    with pytest.raises(UsageError, match="is not a RADIO profile"):
        energy.load_radio(_profile_file(tmp_path, "mcu"))
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(UsageError, match="cannot read the MCU profile"):
        energy.load_mcu(tmp_path / "broken.json")


def test_cli_profile_errors_exit_2_before_anything_is_written(cli_error, tmp_path) -> None:
    code, line = cli_error("firmware", tmp_path, "--out", tmp_path / "o", "--mcu", "nrf9160")
    assert code == 2 and "unknown MCU profile 'nrf9160'" in line
    (tmp_path / "r.json").write_text("[]")
    code, line = cli_error("firmware", tmp_path, "--out", tmp_path / "o", "--radio",
                           tmp_path / "r.json")
    assert code == 2 and "is not a RADIO profile" in line
    code, line = cli_error("firmware", tmp_path, "--out", tmp_path / "o", "--hop", "0")
    assert code == 2 and "--hop must be at least 1" in line
    assert not (tmp_path / "o").exists()


def test_firmware_report_carries_labelled_energy(tiny_bundle: Path, tmp_path: Path) -> None:
    rep = generate_firmware(tiny_bundle, tmp_path / "fw", hop=50)
    doc = json.loads((tmp_path / "fw" / "resources.json").read_text())
    assert doc["energy_assumptions"]["label"] == "estimate"
    for r in doc["modalities"].values():
        en = r["energy"]
        assert en["label"] == "estimate" and en["hop"] == {"samples": 50, "seconds": 5.0,
                                                          "source": "--hop"}
        assert len(en["profiles"]) == 3
        for per in en["profiles"].values():
            assert set(per) == {"cmsis_nn", "reference"}
            for e in per.values():
                assert e["label"] == "estimate"
                assert e["rests_on"]["cycles"].startswith("estimate from")   # no --build
                assert all(e["rests_on"][k] for k in ("cycles_per_instruction", "mcu",
                                                      "radio", "cell"))
                assert e["send_frame"]["bytes"] == 36 + 96          # v2 frame, D = 96
                assert e["stream_raw"]["bytes"] == 50 * 3 * 2
                assert e["encode_and_send_uj"] > e["send_frame"]["energy_uj"] > 0
    text = rep.table()
    assert "energy per window (ESTIMATE" in text and "nrf52840+nrf52840-ble" in text
