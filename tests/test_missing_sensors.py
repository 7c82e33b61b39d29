"""A naturally absent modality is treated exactly like a masked one: never kept by a latent mask,
never encoded, scored beside every subset on the windows where that subset arrived; and Daphnet
with a stuck thigh sensor trains, evaluates and exports end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures_public import daphnet_rows, write_daphnet

from crossl_edge.model.crossl import CroSSL, ModalityShape, ModelConfig
from crossl_edge.model.masking import latent_mask, restrict
from crossl_edge.train.loop import presence


def _avail(b: int = 64, m: int = 3) -> torch.Tensor:
    a = torch.ones(b, m)
    a[::2, 1] = 0
    a[::3, 0] = 0
    a[5, :2] = 0  # only the last modality arrived
    return a


@pytest.mark.parametrize("strategy", ["spatial", "random"])
def test_latent_masks_never_keep_an_absent_modality(strategy: str) -> None:
    avail = _avail()
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        mask = latent_mask(64, 3, 4, strategy=strategy, coverage=0.5, generator=gen,
                           available=avail)
        assert (mask * (1 - avail)[:, :, None]).sum() == 0
        assert (mask.flatten(1).sum(1) > 0).all()  # never empty: an available one is restored
    full = latent_mask(8, 3, 4, generator=torch.Generator().manual_seed(1))
    same = latent_mask(8, 3, 4, generator=torch.Generator().manual_seed(1),
                       available=torch.ones(8, 3))
    assert torch.equal(full, same)  # complete data: exactly the old draws


def test_training_presence_respects_what_arrived() -> None:
    avail = _avail()
    gen = torch.Generator().manual_seed(0)
    for subsets in (0.0, 0.8):
        p = presence(64, 3, drop=0.3, subsets=subsets, gen=gen, device=torch.device("cpu"),
                     available=avail)
        assert (p * (1 - avail)).sum() == 0 and (p.sum(1) > 0).all()
    r = restrict(torch.tensor([[1.0, 0, 0]]), torch.tensor([[0.0, 1, 1]]), generator=gen)
    assert r[0, 0] == 0 and r.sum() == 1


def _model() -> CroSSL:
    torch.manual_seed(0)
    cfg = ModelConfig((ModalityShape("a", 3, 32), ModalityShape("b", 2, 32)), 2,
                      encoder="edge", latent_dim=8, dropout=0.0)
    return CroSSL(cfg)


def test_absent_windows_never_reach_an_encoder_or_its_batchnorm() -> None:
    model = _model().train()
    x = {"a": torch.randn(6, 3, 32), "b": torch.randn(6, 2, 32)}
    avail = torch.ones(6, 2)
    avail[[1, 4], 1] = 0
    lat = model.encode(x, avail)
    assert (lat[[1, 4], 1] == 0).all() and (lat[[0, 2, 3, 5], 1] != 0).any()
    ref = _model().train()
    ref.encoders["b"](x["b"][[0, 2, 3, 5]])  # the same update from the present rows alone
    assert all(torch.equal(u, v) for u, v in zip(model.encoders["b"].state_dict().values(),
                                                 ref.encoders["b"].state_dict().values(),
                                                 strict=True))
    loss, _ = model.ssl_loss(x, generator=torch.Generator().manual_seed(0), available=avail)
    loss.backward()
    assert torch.isfinite(loss)
    none = torch.tensor([[1.0, 0.0]] * 6)
    assert (model.encode(x, none)[:, 1] == 0).all()


def test_evaluate_scores_what_really_arrived() -> None:
    from crossl_edge.data.windows import ModalitySpec, Windows
    from crossl_edge.evaluate import evaluate, format_table

    rng = np.random.default_rng(0)
    present_b = np.array([True, True, False, False, True, True])
    w = Windows((ModalitySpec("a", ("0", "1", "2"), 1.0), ModalitySpec("b", ("0", "1"), 1.0)),
                {"a": rng.normal(size=(6, 3, 32)), "b": rng.normal(size=(6, 2, 32))},
                [0, 1, 0, 1, 0, 1], ["s"] * 6, ("x", "y"), present={"b": present_b})
    res = evaluate(_model().eval(), w)
    by = {tuple(s["present"]): s for s in res["subsets"]}
    assert by[("a", "b")]["n"] == 6 and by[("a", "b")]["arrived"]["n"] == 4
    assert by[("a",)]["arrived"]["n"] == 2 and by[("b",)]["n"] == 4
    assert by[("b",)]["arrived"] is None  # no window had b alone
    assert "arrived: n" in format_table(res)


def test_daphnet_with_a_stuck_thigh_trains_evaluates_and_exports(tmp_path: Path,
                                                                  cli_run) -> None:
    stuck = daphnet_rows([(1, 700), (2, 500)], seed=5)
    stuck[:, 4:7] = 0  # thigh reads 0,0,0 for the whole run
    data = tmp_path / "data"
    write_daphnet(data, {"S01R01": daphnet_rows([(1, 700), (2, 400)], seed=1),
                         "S02R01": daphnet_rows([(1, 600), (2, 500)], seed=2),
                         "S03R01": daphnet_rows([(1, 300), (2, 300)], seed=3), "S03R02": stuck})
    run, bundle = tmp_path / "run", tmp_path / "bundle"
    code, out, err = cli_run("train", "--dataset", "daphnet", "--data", data, "--data-option",
                             "window=64", "--data-option", "step=32", "--data-option",
                             "test_subjects=3", "--out", run, "--encoder", "edge", "--mode",
                             "fine", "--pretrain-epochs", "1", "--epochs", "1", "--device",
                             "cpu")
    assert code == 0, err
    assert "3 subjects" in out and "absent: thigh_acc in 34 windows" in out, out[:300]
    code, out, err = cli_run("evaluate", run, "--json")
    assert code == 0, err
    by = {tuple(s["present"]): s for s in json.loads(out)["subsets"]}
    full = ("ankle_acc", "thigh_acc", "trunk_acc")
    # the stuck run's windows are judged without thigh: exactly ankle + trunk arrived there
    assert by[("ankle_acc", "trunk_acc")]["arrived"]["n"] == 34
    assert by[full]["arrived"]["n"] == by[full]["n"] - 34
    assert by[("thigh_acc",)]["n"] == by[full]["n"] - 34  # never judged on the zeros
    code, _, err = cli_run("export", run, "--out", bundle, "--calibration-windows", "16")
    assert code == 0, err
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert [m["name"] for m in manifest["modalities"]] == list(full)
    code, _, err = cli_run("train", "--dataset", "daphnet", "--data", data, "--out",
                           tmp_path / "strict", "--strict-sensors", "--device", "cpu")
    assert code == 2 and "sensor thigh_acc reads exactly 0" in err and "Traceback" not in err
