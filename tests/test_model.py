"""Model: encoder registry shapes, masking semantics, VICReg, presence-mask equivalence."""

from __future__ import annotations

import pytest
import torch

from crossl_edge.model import ENCODERS, CroSSL, ModalityShape, ModelConfig, PhoneModel
from crossl_edge.model.encoders import build_encoder, encoder_macs, same_padding
from crossl_edge.model.masking import latent_mask
from crossl_edge.model.vicreg import vicreg


def _cfg(encoder: str = "crossl") -> ModelConfig:
    return ModelConfig((ModalityShape("acc", 3, 100), ModalityShape("ecg", 1, 64)), 4,
                       encoder=encoder)


@pytest.mark.parametrize("name", sorted(ENCODERS))
@pytest.mark.parametrize("length", [64, 100, 37])
def test_encoder_maps_window_to_latent(name: str, length: int) -> None:
    torch.manual_seed(0)
    enc = build_encoder(name, 3, latent_dim=96).eval()
    assert enc(torch.randn(5, 3, length)).shape == (5, 96)
    assert encoder_macs(enc, length) > 0


def test_faithful_encoder_matches_paper_size() -> None:
    enc = build_encoder("crossl", 3)
    n = sum(p.numel() for p in enc.parameters())
    assert 55_000 < n < 62_000  # paper/official code: about 58k for a 3-channel modality
    assert [b.conv.kernel_size[0] for b in enc.blocks] == [24, 16, 8]
    assert [b.conv.out_channels for b in enc.blocks] == [24, 48, 96]


def test_edge_encoder_is_cheaper() -> None:
    a, b = build_encoder("crossl", 3), build_encoder("edge", 3)
    assert encoder_macs(b, 100) * 5 < encoder_macs(a, 100)


def test_same_padding_matches_torch_same_at_stride_1() -> None:
    for k in (8, 16, 24, 5):
        conv = torch.nn.Conv1d(2, 2, k, padding="same", bias=False)
        x = torch.randn(1, 2, 50)
        left, right = same_padding(50, k, 1)
        ref = torch.nn.functional.conv1d(torch.nn.functional.pad(x, (left, right)), conv.weight)
        assert torch.allclose(conv(x), ref, atol=1e-6)


def test_spatial_mask_masks_whole_latents_and_never_everything() -> None:
    g = torch.Generator().manual_seed(0)
    m = latent_mask(512, 3, 8, strategy="spatial", coverage=0.3, generator=g)
    assert m.shape == (512, 3, 8)
    assert torch.all(m == m[:, :, :1])                 # whole vectors at once
    assert torch.all(m.amax(dim=(1, 2)) == 1)            # at least one modality kept
    kept = m[:, :, 0].mean().item()
    assert 0.3 < kept < 0.55                             # coverage plus the guard


def test_random_mask_is_elementwise() -> None:
    g = torch.Generator().manual_seed(0)
    m = latent_mask(64, 2, 96, strategy="random", coverage=0.9, generator=g)
    assert not torch.all(m == m[:, :, :1])
    assert abs(m.mean().item() - 0.9) < 0.02


def test_vicreg_zero_invariance_for_identical_views_and_positive_loss() -> None:
    z = torch.randn(16, 32)
    loss, parts = vicreg(z, z.clone())
    assert parts["invariance"] == 0.0 and loss.item() > 0
    loss2, parts2 = vicreg(z, torch.randn(16, 32))
    assert parts2["invariance"] > 0 and loss2 > loss


def test_absent_modality_is_exact_zero_and_phone_model_agrees() -> None:
    torch.manual_seed(0)
    model = CroSSL(_cfg()).eval()
    inputs = {"acc": torch.randn(4, 3, 100), "ecg": torch.randn(4, 1, 64)}
    lat = model.encode(inputs)
    assert lat.shape == (4, 2, 96)
    present = torch.tensor([[1.0, 0.0]] * 4)
    a = model.classify(lat, present)
    noisy = lat.clone()
    noisy[:, 1] = 1e3                                    # whatever arrives for an absent node
    assert torch.allclose(a, model.classify(noisy, present))
    assert torch.allclose(a, PhoneModel(model)(lat, present), atol=1e-6)


def test_ssl_loss_backpropagates_into_every_encoder() -> None:
    torch.manual_seed(0)
    model = CroSSL(_cfg("edge"))
    loss, _ = model.ssl_loss({"acc": torch.randn(8, 3, 100), "ecg": torch.randn(8, 1, 64)},
                             generator=torch.Generator().manual_seed(1))
    loss.backward()
    for name in ("acc", "ecg"):
        g = model.encoders[name].blocks[0].conv.weight.grad
        assert g is not None and g.abs().sum() > 0


def test_config_round_trip() -> None:
    cfg = _cfg("edge")
    assert ModelConfig.from_json(cfg.to_json()) == cfg
