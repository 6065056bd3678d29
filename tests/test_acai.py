"""ACAIKMeans: the critic, its separate optimiser, and the shared k-means stage."""

import numpy as np
import pytest
import torch

from conftest import fast_estimator
from skdeepcluster import ACAIKMeans, AutoencoderKMeans
from skdeepcluster._acai import InterpolationCritic
from skdeepcluster.nn import L2Normalize, MLPEncoder


def _params(module):
    return [p.detach().clone() for p in module.parameters()]


def _changed(module, before):
    return any(not torch.equal(p, q) for p, q in zip(module.parameters(), before))


@pytest.fixture
def fitted(blobs):
    X, _ = blobs
    return fast_estimator(ACAIKMeans, n_clusters=3, random_state=0).fit(X), X


def test_critic_is_a_fresh_copy_of_the_encoder():
    torch.manual_seed(0)
    encoder = MLPEncoder(6, (5,), 3)
    critic = InterpolationCritic(encoder)
    shapes = [p.shape for p in critic.body.parameters()]
    assert shapes == [p.shape for p in encoder.parameters()]
    assert all(
        not torch.equal(p, q)
        for p, q in zip(critic.body.parameters(), encoder.parameters())
    )
    assert critic(torch.zeros(4, 6)).shape == (4,)


def test_critic_drops_the_unit_norm_layer():
    # A critic ending in L2Normalize could only output means of unit vectors,
    # |d(x)| <= 1/sqrt(d): too narrow to regress alpha up to 0.5.
    encoder = torch.nn.Sequential(MLPEncoder(6, (5,), 4), L2Normalize())
    critic = InterpolationCritic(encoder)
    assert not any(isinstance(m, L2Normalize) for m in critic.modules())
    assert any(isinstance(m, L2Normalize) for m in encoder.modules())
    with torch.no_grad():
        critic.body[0].layers[-1].weight.zero_()
        critic.body[0].layers[-1].bias.fill_(10.0)
    assert torch.allclose(critic(torch.zeros(2, 6)), torch.full((2,), 10.0))


def test_each_optimiser_holds_one_network(fitted):
    model, _ = fitted
    net = model.net_

    def ids(optimizer):
        return {id(p) for group in optimizer.param_groups for p in group["params"]}

    assert ids(net.optimizer_) == {id(p) for p in net.module_.parameters()}
    assert ids(net.critic_optimizer_) == {id(p) for p in net.critic_.parameters()}


def _one_step(net, X):
    batch = net.get_dataset(torch.as_tensor(X))[np.arange(16)]
    return net.train_step(batch)


def test_critic_optimiser_gets_the_optimizer_settings(blobs):
    X, _ = blobs
    model = fast_estimator(
        ACAIKMeans,
        n_clusters=3,
        pretrain_epochs=1,
        optimizer=torch.optim.AdamW,
        optimizer__weight_decay=0.25,
        optimizer__betas=(0.5, 0.8),
        # Patterns that name the autoencoder's parameters stay with its
        # optimiser.
        optimizer__param_groups=[("encoder.*", {"lr": 0.01})],
        random_state=0,
    ).fit(X)
    (critic,) = model.net_.critic_optimizer_.param_groups
    assert isinstance(model.net_.critic_optimizer_, torch.optim.AdamW)
    assert critic["weight_decay"] == 0.25 and critic["betas"] == (0.5, 0.8)
    assert critic["lr"] == model.lr
    assert {g["lr"] for g in model.net_.optimizer_.param_groups} == {0.01, model.lr}


def test_critic_optimizer_keywords_set_the_critic_apart(blobs):
    X, _ = blobs
    model = fast_estimator(
        ACAIKMeans,
        n_clusters=3,
        pretrain_epochs=1,
        optimizer__weight_decay=0.25,
        critic_optimizer__weight_decay=0.0,
        critic_optimizer__lr=0.01,
        random_state=0,
    )
    assert model.get_params()["critic_optimizer__lr"] == 0.01
    model.fit(X)
    (critic,) = model.net_.critic_optimizer_.param_groups
    assert critic["weight_decay"] == 0.0 and critic["lr"] == 0.01
    (autoencoder,) = model.net_.optimizer_.param_groups
    assert autoencoder["weight_decay"] == 0.25 and autoencoder["lr"] == model.lr


def test_critic_optimizer_is_checked_before_training(blobs):
    # Its own settings, which the autoencoder's optimiser does not have, are
    # tried too: capturable needs a GPU, and fails here before training.
    X, _ = blobs
    model = fast_estimator(ACAIKMeans, n_clusters=3, critic_optimizer__capturable=True)
    with pytest.raises(
        ValueError, match="ACAIKMeans's critic_optimizer Adam cannot take a training"
    ):
        model.fit(X)
    assert not hasattr(model, "net_")


def test_fused_critic_optimizer_drops_the_shared_foreach(blobs):
    # The optimiser keywords include foreach=True by default, which torch
    # refuses beside fused=True: the critic's fused update goes without it.
    X, _ = blobs
    model = fast_estimator(
        ACAIKMeans, n_clusters=3, critic_optimizer__fused=True, random_state=0
    ).fit(X)
    (critic,) = model.net_.critic_optimizer_.param_groups
    assert critic["fused"] and not critic["foreach"]
    (autoencoder,) = model.net_.optimizer_.param_groups
    assert autoencoder["foreach"]


def test_critic_optimizer_keyword_the_optimiser_does_not_take(blobs):
    X, _ = blobs
    model = fast_estimator(ACAIKMeans, n_clusters=3, critic_optimizer__momentum=0.9)
    with pytest.raises(TypeError, match="'critic_optimizer__momentum'.*Adam"):
        model.fit(X)


def test_critic_moves_only_through_its_optimiser(fitted, monkeypatch):
    # With the critic's optimiser disabled, a training step (whose autoencoder
    # loss goes through the critic) must leave the critic untouched, while the
    # autoencoder still learns.
    model, X = fitted
    net = model.net_
    critic_before, ae_before = _params(net.critic_), _params(net.module_)
    monkeypatch.setattr(net.critic_optimizer_, "step", lambda *a, **k: None)
    _one_step(net, X)
    assert not _changed(net.critic_, critic_before)
    assert _changed(net.module_, ae_before)


def test_critic_step_does_not_move_the_autoencoder(fitted, monkeypatch):
    model, X = fitted
    net = model.net_
    critic_before, ae_before = _params(net.critic_), _params(net.module_)
    monkeypatch.setattr(net.optimizer_, "step", lambda *a, **k: None)
    _one_step(net, X)
    assert not _changed(net.module_, ae_before)
    assert _changed(net.critic_, critic_before)


def test_each_network_gets_the_gradient_of_its_own_loss_only(fitted, monkeypatch):
    # train_step shares one critic pass between the two losses; neither loss
    # may leak into the other network's gradients. Recompute each loss on its
    # own from the same forward pass (same alpha draw) and compare.
    model, X = fitted
    net = model.net_
    monkeypatch.setattr(net.optimizer_, "step", lambda *a, **k: None)
    monkeypatch.setattr(net.critic_optimizer_, "step", lambda *a, **k: None)
    batch = net.get_dataset(torch.as_tensor(X))[np.arange(16)]
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net.train_step(batch)
    autoencoder_params = list(net.module_.parameters())
    critic_params = list(net.critic_.parameters())
    step_grads = [p.grad.clone() for p in autoencoder_params + critic_params]

    Xb = batch[0]
    # The fitted net is past adversarial_start: the critic's term is in.
    assert net.current_adversarial_weight() == net.adversarial_weight > 0
    with torch.random.fork_rng():
        torch.manual_seed(0)
        reconstruction, _, mixed, alpha = net.interpolate(Xb)
    autoencoder_loss = net.criterion_(reconstruction, Xb) + (
        net.adversarial_weight * net.critic_(mixed).pow(2).mean()
    )
    blend = net.gamma * Xb + (1 - net.gamma) * reconstruction.detach()
    critic_loss = (net.critic_(mixed.detach()) - alpha).pow(2).mean() + net.critic_(
        blend
    ).pow(2).mean()
    expected = [
        *torch.autograd.grad(autoencoder_loss, autoencoder_params),
        *torch.autograd.grad(critic_loss, critic_params),
    ]
    for got, want in zip(step_grads, expected):
        torch.testing.assert_close(got, want)


def test_history_records_both_losses(blobs):
    X, _ = blobs
    model = fast_estimator(
        ACAIKMeans, n_clusters=3, pretrain_epochs=8, random_state=0
    ).fit(X)
    history = model.net_.history
    assert model.n_iter_ == len(history) == 8
    for key in ("reconstruction_loss", "adversarial_loss", "critic_loss"):
        values = history[-1, "batches", :, key]
        assert len(values) == int(np.ceil(len(X) / 16))
        assert all(np.isfinite(values)) and min(values) >= 0
    critic = history[:, "critic_loss"]
    # The critic learns to predict alpha (its loss falls from its start).
    assert critic[-1] < critic[0]


def test_interpolation_coefficients_are_in_range(fitted):
    model, X = fitted
    _, _, mixed, alpha = model.net_.interpolate(torch.as_tensor(X[:50]))
    assert mixed.shape == (50, X.shape[1])
    assert 0 <= alpha.min() and alpha.max() <= 0.5
    assert alpha.std() > 0


@pytest.mark.parametrize("normalize_embedding", [True, False])
def test_interpolants_follow_the_embedding_sphere(blobs, normalize_embedding):
    # Unit-length codes: the decoder is given the interpolant scaled back to
    # unit length; otherwise the paper's linear interpolant itself.
    X, _ = blobs
    model = fast_estimator(
        ACAIKMeans,
        n_clusters=3,
        normalize_embedding=normalize_embedding,
        random_state=0,
    ).fit(X)
    decoded = []
    hook = model.net_.module_.decoder.register_forward_pre_hook(
        lambda module, inputs: decoded.append(inputs[0].detach())
    )
    with torch.no_grad():
        _, embedding, _, alpha = model.net_.interpolate(torch.as_tensor(X[:50]))
    hook.remove()
    # The decoder's first input is the codes themselves, its second the mix.
    linear = alpha[:, None] * embedding + (1 - alpha[:, None]) * embedding.roll(1, 0)
    expected = (
        torch.nn.functional.normalize(linear, dim=1) if normalize_embedding else linear
    )
    torch.testing.assert_close(decoded[1], expected)
    if normalize_embedding:
        # Not vacuous: the chords between the unit codes are shorter than 1.
        assert linear.norm(dim=1).min() < 0.99


def test_zero_weight_is_a_plain_autoencoder(blobs):
    # adversarial_weight=0: the critic is trained but has no say, so the
    # autoencoder (and the clustering) is AutoencoderKMeans's, step for step.
    X, _ = blobs
    acai = fast_estimator(
        ACAIKMeans, n_clusters=3, adversarial_weight=0.0, random_state=0
    ).fit(X)
    plain = fast_estimator(AutoencoderKMeans, n_clusters=3, random_state=0).fit(X)
    np.testing.assert_allclose(acai.transform(X), plain.transform(X), atol=1e-5)
    np.testing.assert_array_equal(acai.labels_, plain.labels_)
    # ...and with the default weight the critic does change the training.
    regularised = fast_estimator(ACAIKMeans, n_clusters=3, random_state=0).fit(X)
    assert not np.allclose(regularised.transform(X), plain.transform(X), atol=1e-5)


def test_critic_term_enters_at_adversarial_start(blobs):
    # Before adversarial_start the autoencoder trains on reconstruction
    # alone, exactly as AutoencoderKMeans (same batches, same steps); from
    # then on the critic's term changes its training.
    X, _ = blobs
    plain = fast_estimator(AutoencoderKMeans, n_clusters=3, random_state=0).fit(X)
    acai = fast_estimator(
        ACAIKMeans, n_clusters=3, adversarial_start=0.4, random_state=0
    ).fit(X)
    assert acai.net_.adversarial_start == 2  # round(0.4 * 5 epochs)
    plain_loss = plain.net_.history[:, "train_loss"]
    acai_loss = acai.net_.history[:, "train_loss"]
    np.testing.assert_allclose(acai_loss[:2], plain_loss[:2], rtol=1e-6)
    # From epoch 2 the loss holds the critic's term, and training differs.
    assert np.all(np.abs(np.subtract(acai_loss[2:], plain_loss[2:])) > 1e-4)
    assert not np.allclose(acai.transform(X), plain.transform(X), atol=1e-5)
    # The critic learns from the first epoch, whether its term is in or not.
    assert acai.net_.history[0, "critic_loss"] > acai.net_.history[1, "critic_loss"]
    # adversarial_start=1: the term never enters.
    never = fast_estimator(
        ACAIKMeans, n_clusters=3, adversarial_start=1.0, random_state=0
    ).fit(X)
    np.testing.assert_allclose(never.transform(X), plain.transform(X), atol=1e-5)


def test_same_seed_same_labels(blobs):
    X, _ = blobs
    a = fast_estimator(ACAIKMeans, n_clusters=3, random_state=1).fit(X)
    b = fast_estimator(ACAIKMeans, n_clusters=3, random_state=1).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_allclose(a.transform(X), b.transform(X))


def test_convolutional_critic():
    rng = np.random.default_rng(0)
    X = rng.random((32, 64), dtype=np.float32)
    model = ACAIKMeans(
        2, input_shape=(1, 8, 8), pretrain_epochs=1, batch_size=16, random_state=0
    ).fit(X)
    assert any(isinstance(m, torch.nn.Conv2d) for m in model.net_.critic_.modules())
    assert model.net_.critic_(torch.zeros(3, 1, 8, 8)).shape == (3,)


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(adversarial_weight=-0.1), "adversarial_weight"),
        (dict(gamma=1.5), "gamma"),
        (dict(adversarial_start=1.5), "adversarial_start"),
        (dict(gamma=-0.1), "gamma"),
        (dict(pretrain_epochs=-1), "pretrain_epochs"),
    ],
)
def test_bad_parameters(params, message, blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match=message):
        ACAIKMeans(**params).fit(X)
