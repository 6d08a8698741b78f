import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from cellbench.config import TrainingConfig
from cellbench.models.images import embed_images, load_image_model, train_vae
from cellbench.models.training import fit
from cellbench.models.vae import ConvVAE, vae_loss
from tests.models import blob_crops, fit_settings


def test_encoder_decoder_shapes():
    vae = ConvVAE(in_channels=3, image_size=32, latent_dim=6, depth=3, width=8)
    x = torch.randn(4, 3, 32, 32)
    mu, logvar = vae.encode(x)
    assert mu.shape == logvar.shape == (4, 6)
    recon, mu2, _ = vae(x)
    assert recon.shape == x.shape and mu2.shape == (4, 6)
    vae.eval()
    assert torch.equal(vae.embed(x), vae.encode(x)[0])  # the embedding is the latent mean


def test_gaussian_vae_loss_decreases(tmp_path):
    images, _, _ = blob_crops(32, size=16)
    torch.manual_seed(0)
    vae = ConvVAE(2, 16, latent_dim=4, depth=2, width=8)
    history = fit(
        vae,
        TensorDataset(torch.from_numpy(images)),  # inputs alone: the target is the input
        None,
        lambda out, x: vae_loss(out, x, beta=1.0, decoder="gaussian"),
        fit_settings(epochs=4, learning_rate=3e-3),
        tmp_path / "checkpoint.pt",
    )
    losses = [row["train_loss"] for row in history["epochs"]]
    assert losses[-1] < losses[0]
    assert all(np.isfinite(losses))


@pytest.mark.parametrize("decoder", ["gaussian", "bernoulli"])
def test_train_save_load_and_embed(tmp_path, decoder):
    images, _, _ = blob_crops(24, size=16)
    history = train_vae(
        {"train": images[:16], "val": images[16:]},
        training=TrainingConfig(
            epochs=2, batch_size=8, learning_rate=3e-3, scheduler="cosine", patience=5
        ),
        augment=True,
        seed=0,
        settings_hash="h",
        model_path=tmp_path / "vae.pt",
        checkpoint_path=tmp_path / "checkpoint.pt",
        latent_dim=5,
        depth=2,
        width=8,
        beta=0.5,
        decoder=decoder,
    )
    assert len(history["epochs"]) == 2
    assert all(np.isfinite(row["val_loss"]) for row in history["epochs"])
    model, metadata = load_image_model(tmp_path / "vae.pt")
    assert metadata["kind"] == "vae" and metadata["arguments"]["decoder"] == decoder
    embedding = embed_images(model, images, batch_size=10)
    assert embedding.shape == (24, 5) and embedding.dtype == np.float32
    if decoder == "bernoulli":
        scaled = model.scale_inputs(torch.from_numpy(images))
        assert scaled.min() >= 0 and scaled.max() <= 1
        assert torch.all(model.high > model.low)
        assert model.reconstruct(torch.from_numpy(images[:2])).max() <= 1


def test_bernoulli_loss_needs_targets_in_unit_range():
    vae = ConvVAE(1, 8, latent_dim=2, depth=1, width=4, decoder="bernoulli")
    x = torch.rand(2, 1, 8, 8)
    assert torch.isfinite(vae_loss(vae(x), x, decoder="bernoulli"))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        vae_loss(vae(x), x * 3 - 1, decoder="bernoulli")


def test_kl_term_is_zero_at_the_prior():
    recon = torch.zeros(2, 1, 4, 4)
    zero = torch.zeros(2, 3)
    assert vae_loss((recon, zero, zero), recon, beta=10.0) == 0


def test_crop_size_must_suit_the_depth():
    with pytest.raises(ValueError, match="divisible by 2 \\*\\* depth"):
        ConvVAE(2, 20, depth=3)
    with pytest.raises(ValueError, match="decoder"):
        ConvVAE(2, 16, depth=2, decoder="poisson")
