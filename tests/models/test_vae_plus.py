"""VAE+: the BBBC021 VAE study's VAE with a half-batch discriminator and feature matching."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from cellbench.config import VAEModel
from cellbench.models.adversarial import Adversary, feature_matching_gammas
from cellbench.models.images import train_vae
from cellbench.models.training import fit
from cellbench.models.vae import ConvVAE, adversary_settings, vae_adversary, vae_loss
from tests.models import blob_crops, fit_settings

RAMP = 3010


def tiny_entry(**overrides) -> VAEModel:
    """The vae_plus preset shrunk to 16 px crops (depth 3, 4 channels, an 8-d latent)."""
    fields = {"depth": 3, "width": 4, "max_width": 4, "latent_size": 8, "epochs": 1}
    fields.update(overrides)
    return VAEModel(name="v", crop_kind="k", size_px=16, preset="vae_plus", **fields)


def build(seed: int = 0) -> tuple[ConvVAE, Adversary]:
    """A tiny VAE and its VAE+ adversary, seeded."""
    torch.manual_seed(seed)
    model = ConvVAE(2, 16, latent_dim=4, depth=2, width=4)
    return model, vae_adversary(model, adversary_settings(tiny_entry()))


def crops(n: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(blob_crops(n, size=16, seed=seed)[0])


def loss_of(model):
    return lambda out, x: vae_loss(out, model.scale_inputs(x), 1.0, "gaussian")


def test_the_preset_is_the_medium_vae_with_the_study_adversary():
    entry = VAEModel(name="v", crop_kind="k", preset="vae_plus")
    medium = VAEModel(name="v", crop_kind="k", preset="medium")
    assert entry.adversarial and not medium.adversarial
    shared = ("depth", "width", "max_width", "latent_size", "decoder", "beta", "logvar_clamp")
    assert all(getattr(entry, key) == getattr(medium, key) for key in shared)
    assert adversary_settings(medium) is None
    assert adversary_settings(entry) == {
        "learning_rate": 1e-2,
        "momentum": 0.9,
        "ramp_steps": RAMP,
        "adversarial_weight": 1.0,
    }
    with pytest.raises(ValueError, match="discriminator_momentum"):
        VAEModel(name="v", crop_kind="k", preset="vae_plus", discriminator_momentum=1.0)


def test_the_preset_trains_a_step_and_records_its_losses(tmp_path):
    entry = tiny_entry()
    images = crops(6).numpy()
    history = train_vae(
        {"train": images},
        training=entry.model_copy(update={"batch_size": 6}),
        augment=entry.augment,
        seed=0,
        settings_hash="vae_plus",
        model_path=tmp_path / "v.pt",
        checkpoint_path=tmp_path / "v.ckpt",
        latent_dim=entry.latent_size,
        depth=entry.depth,
        width=entry.width,
        max_width=entry.max_width,
        logvar_clamp=entry.logvar_clamp,
        beta=entry.beta,
        decoder=entry.decoder,
        adversarial=adversary_settings(entry),
    )
    row = history["epochs"][0]
    assert row["adversarial_step"] == 1  # one batch of 6: one step
    for key in ("discriminator_loss", "adversarial_loss", "feature_matching_loss"):
        assert np.isfinite(row[key])
    assert row["discriminator_loss"] > 0 and row["adversarial_loss"] > 0
    assert row["feature_matching_loss"] == 0.0  # gamma_i(0) = 0 for every layer


@pytest.mark.parametrize(
    ("step", "expected"),
    [(0, [0, 0, 0, 0]), (3010, [1, 0, 0, 0]), (4515, [1, 0.5, 0, 0]), (9030, [1, 1, 1, 0])],
)
def test_gammas_follow_the_study_schedule(step, expected):
    assert feature_matching_gammas(step, 4, RAMP) == pytest.approx(expected)
    # the formula itself, clip(t / 3010 - i, 0, 1)
    assert expected == pytest.approx(list(np.clip(step / RAMP - np.arange(4), 0, 1)))


def test_generator_loss_is_the_gamma_weighted_matching_plus_the_gan_term():
    model, adversary = build()
    adversary.adversarial_weight = 0.3
    adversary.step = 4515  # gammas 1, 0.5, 0, 0
    x = crops(8)
    outputs = model(x)
    loss = adversary.generator_loss(outputs, x)
    assert adversary.step == 4516

    # an independent computation with the discriminator as it is after its step
    fake, real = outputs[0][:4], x[4:]
    with torch.no_grad():
        logit, fake_features = adversary.discriminator(fake)
        _, real_features = adversary.discriminator(real)
        matching = 0.0
        for i, (r, f) in enumerate(zip(real_features, fake_features, strict=True)):
            gamma = min(max(4515 / RAMP - i, 0.0), 1.0)
            matching += gamma * ((r.mean(0) - f.mean(0)) ** 2).mean().item()
        gan = F.binary_cross_entropy_with_logits(logit, torch.ones(4)).item()
    assert loss.item() == pytest.approx(0.3 * gan + matching, rel=1e-5)
    loss.backward()  # the VAE gets gradients from the adversary's terms
    assert model.decoder[0].weight.grad.abs().sum() > 0


def test_a_step_moves_the_discriminator_with_sgd_momentum():
    model, adversary = build()
    assert isinstance(adversary.optimizer, torch.optim.SGD)
    group = adversary.optimizer.param_groups[0]
    assert group["momentum"] == 0.9 and group["lr"] == 1e-2
    before = copy.deepcopy(adversary.discriminator.state_dict())
    x = crops(8)
    adversary.generator_loss(model(x), x)
    after = adversary.discriminator.state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in before)
    state = adversary.optimizer.state_dict()["state"]
    assert state and all("momentum_buffer" in s for s in state.values())


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k].cpu(), b[k].cpu()) for k in a)


def test_resuming_gives_the_weights_of_an_uninterrupted_run(tmp_path):
    train = TensorDataset(crops(12))
    straight, straight_adversary = build()
    history = fit(
        straight,
        train,
        None,
        loss_of(straight),
        fit_settings(epochs=2, batch_size=4),
        tmp_path / "straight.pt",
        adversary=straight_adversary,
    )
    first, first_adversary = build()
    fit(
        first,
        train,
        None,
        loss_of(first),
        fit_settings(epochs=1, batch_size=4),
        tmp_path / "resumed.pt",
        adversary=first_adversary,
    )
    resumed, resumed_adversary = build()
    resumed_history = fit(
        resumed,
        train,
        None,
        loss_of(resumed),
        fit_settings(epochs=2, batch_size=4),
        tmp_path / "resumed.pt",
        adversary=resumed_adversary,
    )
    assert resumed_history["resumed_from"] == [0, 1]
    assert resumed_adversary.step == straight_adversary.step == 6  # 3 batches an epoch
    assert same_state(resumed.state_dict(), straight.state_dict())
    discriminators = resumed_adversary.discriminator, straight_adversary.discriminator
    assert same_state(*(d.state_dict() for d in discriminators))
    assert history["epochs"] == [
        {**row, "seconds": history["epochs"][i]["seconds"]}
        for i, row in enumerate(resumed_history["epochs"])
    ]
    saved = torch.load(tmp_path / "resumed.pt", weights_only=True)["adversary"]
    assert saved["step"] == 6 and saved["optimizer"]["state"]


def test_a_checkpoint_without_discriminator_state_is_refused(tmp_path):
    from cellbench.errors import CellbenchError

    model, _ = build()
    checkpoint = tmp_path / "plain.pt"
    fit(model, TensorDataset(crops(8)), None, loss_of(model), fit_settings(epochs=1), checkpoint)
    model, adversary = build()
    with pytest.raises(CellbenchError, match="plain.pt"):
        fit(
            model,
            TensorDataset(crops(8)),
            None,
            loss_of(model),
            fit_settings(epochs=2),
            checkpoint,
            adversary=adversary,
        )
