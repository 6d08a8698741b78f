import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from cellbench.config import TrainingConfig
from cellbench.models.images import embed_images, load_image_model, train_vae
from cellbench.models.training import fit
from cellbench.models.vae import ConvVAE, adversary_settings, vae_loss
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
    with pytest.raises(ValueError, match="at least 2 \\*\\* depth"):
        ConvVAE(2, 7, depth=3)
    with pytest.raises(ValueError, match="decoder"):
        ConvVAE(2, 16, depth=2, decoder="poisson")


@pytest.mark.parametrize(("size", "depth"), [(68, 5), (20, 3), (17, 4), (32, 3)])
def test_any_crop_size_comes_back_whole(size, depth):
    """The decoder adds back the pixel each halving dropped (68 -> 34 -> 17 -> 8 -> 4 -> 2)."""
    vae = ConvVAE(3, size, latent_dim=4, depth=depth, width=4)
    recon, _, _ = vae(torch.randn(2, 3, size, size))
    assert recon.shape == (2, 3, size, size)


def test_study_presets_build_and_train_a_step(tmp_path):
    """Small, medium, large, beta-VAE and VAE+ of the BBBC021 VAE study, on 68 px crops."""
    from cellbench.config import VAEModel
    from cellbench.config.generative_models import VAE_PRESETS

    images = np.random.default_rng(0).random((8, 3, 68, 68), dtype=np.float32)
    channels = {}
    for preset in VAE_PRESETS:
        entry = VAEModel(name="v", crop_kind="precut", size_px=68, preset=preset, epochs=1)
        assert entry.depth == 5 and entry.logvar_clamp == (-6.0, 3.0)
        assert entry.decoder == "gaussian_nll" and entry.gradient_clip == 1.0
        train_vae(
            {"train": images},
            training=entry.model_copy(update={"batch_size": 4}),
            augment=entry.augment,
            seed=0,
            settings_hash=preset,
            model_path=tmp_path / f"{preset}.pt",
            checkpoint_path=tmp_path / f"{preset}.ckpt",
            latent_dim=entry.latent_size,
            depth=entry.depth,
            width=entry.width,
            max_width=entry.max_width,
            logvar_clamp=entry.logvar_clamp,
            beta=entry.beta,
            decoder=entry.decoder,
            adversarial=adversary_settings(entry),
        )
        model, _ = load_image_model(tmp_path / f"{preset}.pt")
        convolutions = [m for m in model.encoder if isinstance(m, torch.nn.Conv2d)]
        channels[preset] = [m.out_channels for m in convolutions]
        assert model.mu.out_features == entry.latent_size
    assert channels["small"] == [16] * 5 and channels["medium"] == [32] * 5
    assert channels["large"] == [32, 64, 128, 256, 256]
    assert channels["vae_plus"] == channels["medium"]
    assert VAEModel(name="v", crop_kind="k", preset="beta_vae").beta == 4.0
    # what the entry sets itself wins over the preset
    assert VAEModel(name="v", crop_kind="k", preset="small", latent_size=8).latent_size == 8


def test_gaussian_nll_loss_is_the_unit_gaussian_likelihood():
    recon, targets = torch.rand(3, 2, 4, 4), torch.rand(3, 2, 4, 4)
    mu, logvar = torch.randn(3, 5), torch.randn(3, 5)
    got = vae_loss((recon, mu, logvar), targets, beta=2.0, decoder="gaussian_nll")
    sse = ((recon - targets) ** 2).sum() / 3
    kl = (0.5 * (mu**2 + logvar.exp() - 1 - logvar)).sum() / 3
    expected = 0.5 * sse + 0.5 * 32 * np.log(2 * np.pi) + 2.0 * kl
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)


def test_log_variance_is_clamped():
    vae = ConvVAE(1, 8, latent_dim=3, depth=1, width=2, logvar_clamp=(-6.0, 3.0))
    with torch.no_grad():
        vae.logvar.bias.fill_(50.0)
    _, logvar = vae.encode(torch.rand(2, 1, 8, 8))
    assert torch.all(logvar == 3.0)


def test_gradients_are_clipped_to_the_configured_norm(tmp_path, monkeypatch):
    norms = []
    clip = torch.nn.utils.clip_grad_norm_

    def recording(parameters, max_norm):
        parameters = list(parameters)
        clip(parameters, max_norm)
        norms.append(torch.norm(torch.stack([p.grad.norm() for p in parameters])).item())

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", recording)
    images, _, _ = blob_crops(16, size=16)
    vae = ConvVAE(2, 16, latent_dim=4, depth=2, width=8)
    fit(
        vae,
        TensorDataset(torch.from_numpy(images)),
        None,
        lambda out, x: vae_loss(out, x * 100),  # large errors: large gradients
        fit_settings(epochs=1, batch_size=4, gradient_clip=0.5),
        tmp_path / "checkpoint.pt",
    )
    assert len(norms) == 4 and max(norms) <= 0.5 + 1e-4
