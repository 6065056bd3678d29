"""ACAI: an autoencoder regularised by an interpolation critic, then k-means."""

import copy
from numbers import Real
from typing import Any, Literal

import torch
from sklearn.utils._param_validation import Interval
from skorch.callbacks import PassthroughScoring
from skorch.dataset import unpack_data
from skorch.utils import TeeGenerator, to_device

from ._autoencoder_kmeans import AutoencoderKMeans
from ._docstrings import fill_doc
from ._nets import AutoencoderNet
from ._settings import _without_prefix
from ._torch_utils import init_parameters
from ._typing import (
    Callbacks,
    Device,
    FloatOrAuto,
    HiddenDims,
    InputShape,
    IntOrAuto,
    MemoryLike,
    OptimizerFactory,
    RandomStateLike,
)
from .nn import L2Normalize


def _without_l2_normalize(module):
    """Return ``module`` with every :class:`L2Normalize` swapped for the identity."""
    if isinstance(module, L2Normalize):
        return torch.nn.Identity()
    for name, child in module.named_children():
        setattr(module, name, _without_l2_normalize(child))
    return module


@fill_doc
class InterpolationCritic(torch.nn.Module):
    """A copy of the encoder's architecture that scores a batch with one number each.

    The critic sees samples (decoded interpolants or reconstructions) and
    predicts the interpolation coefficient ``alpha``. Reusing the encoder's
    architecture (fresh weights) gives it the same inductive bias as the
    encoder whatever the input (flat, images, or a user's module); as in [1]_,
    the scalar is the mean of the last layer's outputs.

    Parameters
    ----------
    encoder : torch.nn.Module
        Module whose architecture is copied. It is deep-copied and every
        submodule with a ``reset_parameters`` method is re-initialised, so the
        critic shares no weights with it. An :class:`~skdeepcluster.nn.L2Normalize`
        in it is replaced by the identity: the mean of a unit vector's
        components is confined to ``[-1/sqrt(d), 1/sqrt(d)]``, too narrow a
        range to regress ``alpha`` in ``[0, 0.5]``.
    generator : torch.Generator, default=None
        CPU generator the new weights are drawn from (see
        :func:`~skdeepcluster._torch_utils.init_parameters`); ``None`` resets
        every layer from torch's global generator.

    References
    ----------
    {reference_acai}

    Examples
    --------
    >>> import torch
    >>> from skdeepcluster._acai import InterpolationCritic
    >>> from skdeepcluster.nn import MLPEncoder
    >>> InterpolationCritic(MLPEncoder(8, (4,), 2))(torch.zeros(3, 8)).shape
    torch.Size([3])
    """

    def __init__(self, encoder, generator=None):
        super().__init__()
        self.body = _without_l2_normalize(copy.deepcopy(encoder))
        if generator is not None:
            # Layers it does not know and cannot reset keep the copied
            # weights, as below.
            init_parameters(self.body, generator)
            return
        for module in self.body.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def forward(self, x):
        return self.body(x).flatten(start_dim=1).mean(dim=1)


class ACAINet(AutoencoderNet):
    """Autoencoder net trained against an interpolation critic (two optimisers).

    Each training step, with ``z = f(x)`` and ``alpha ~ U[0, 0.5]`` per sample:

    * the latents are mixed with those of another sample of the batch (the
      batch rolled by one; batches are shuffled every epoch, so the pairs are
      random): ``z_mix = alpha * z + (1 - alpha) * roll(z)``, scaled to unit
      length when ``unit_embedding`` (the encoder's codes have unit length),
      and decoded, ``x_mix = g(z_mix)``;
    * the autoencoder minimises ``criterion(g(z), x) + lambda * d(x_mix)^2``,
      i.e. it tries to make its interpolants indistinguishable from
      reconstructions (for which ``alpha = 0``); the second term enters from
      epoch ``adversarial_start`` (zero-based) on, before which the
      autoencoder trains on reconstruction alone;
    * the critic ``d`` minimises ``(d(x_mix) - alpha)^2 + d(gamma * x + (1 - gamma) * g(z))^2``;
      the second term, on blends of data and reconstructions, keeps the critic
      informative when reconstructions are poor.

    ``optimizer_`` holds the autoencoder's parameters only and
    ``critic_optimizer_`` the critic's; each is stepped on its own loss, so
    neither loss moves the other network (skorch's default ``train_step``
    would step every optimiser on one loss). Both losses are computed from the
    same forward pass, as in the paper (simultaneous updates).

    The batch-level history has ``reconstruction_loss``,
    ``adversarial_loss`` (the ``d(x_mix)^2`` term, before ``lambda``) and
    ``critic_loss``; ``critic_loss`` is also averaged per epoch. The
    ``adversarial_loss`` is recorded in every epoch, also before it enters
    the autoencoder's loss.
    """

    def __init__(
        self,
        *args,
        adversarial_weight=0.125,
        adversarial_start=0,
        gamma=0.2,
        unit_embedding=False,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.adversarial_weight = adversarial_weight
        self.adversarial_start = adversarial_start
        self.gamma = gamma
        self.unit_embedding = unit_embedding

    def current_adversarial_weight(self):
        """Weight of the critic's term in this epoch's autoencoder loss.

        ``adversarial_weight`` from epoch ``adversarial_start`` (zero-based)
        on, ``0`` before.
        """
        epoch = len(self.history) - 1
        return self.adversarial_weight if epoch >= self.adversarial_start else 0.0

    def initialize_module(self):
        super().initialize_module()
        # Named with a trailing underscore so that skorch registers it: moved
        # to the device, switched between train/eval mode, saved with the net.
        self.critic_ = InterpolationCritic(self.module_.encoder, self.init_generator)
        return self

    def initialize_optimizer(self, *args, **kwargs):
        # Two separate optimisers (same class and learning rate, as in the
        # paper); the default would put the critic's parameters in optimizer_.
        pgroups, opt_kwargs = self.get_params_for_optimizer(
            "optimizer", self.module_.named_parameters()
        )
        self.optimizer_ = self.optimizer(*pgroups, **opt_kwargs)
        # The critic's optimiser gets the optimizer__* settings too (weight
        # decay, betas, ...), except the parameter groups, whose patterns
        # name the autoencoder's parameters; critic_optimizer__* settings
        # take precedence.
        shared = _critic_shared_keywords(
            self.get_params_for("optimizer"), self.get_params_for("critic_optimizer")
        )
        pgroups, critic_kwargs = self.get_params_for_optimizer(
            "critic_optimizer", self.critic_.named_parameters()
        )
        self.critic_optimizer_ = self.optimizer(*pgroups, **{**shared, **critic_kwargs})
        return self

    def loss_terms(self):
        terms = ("reconstruction_loss", "adversarial_loss", "critic_loss")
        return (*terms, "smoothing_loss") if self.smoothing_weight > 0 else terms

    def get_default_callbacks(self):
        return [
            *super().get_default_callbacks(),
            ("critic_loss", PassthroughScoring(name="critic_loss", on_train=True)),
        ]

    def interpolate(self, X):
        """Forward pass of one training step (no parameter update).

        Returns
        -------
        reconstruction, embedding, mixed, alpha : torch.Tensor
            ``mixed`` is the decoded interpolant and ``alpha`` (shape
            ``(n_samples,)``) its coefficient.
        """
        reconstruction, embedding = self.module_(X)
        alpha = (
            torch.rand(len(X), device=embedding.device, generator=self.device_generator)
            / 2
        )
        weight = alpha.view(-1, *([1] * (embedding.dim() - 1)))
        mixed_embedding = weight * embedding + (1 - weight) * embedding.roll(1, dims=0)
        if self.unit_embedding:
            # The chord between two unit codes passes inside the sphere, where
            # no sample's code lies: lifted back onto it, the interpolant is
            # a code like those the decoder is trained on, and the critic
            # judges the decoded path between the two samples, not its norm.
            mixed_embedding = torch.nn.functional.normalize(mixed_embedding, dim=1)
        return reconstruction, embedding, self.module_.decoder(mixed_embedding), alpha

    def train_step(self, batch, **fit_params):
        self._set_training(True)
        X, indices = unpack_data(self.augmented_batch(batch))
        X = to_device(X, self.device)
        reconstruction, embedding, mixed, alpha = self.interpolate(X)
        # One critic pass on the interpolants serves both losses.
        mixed_scores = self.critic_(mixed)

        # With sample weights, each term of a sample (and of its interpolant,
        # whose coefficient alpha it drew) carries the sample's weight.
        reconstruction_loss = self.reconstruction_loss(reconstruction, X, indices)
        adversarial_loss = self.weighted_mean(mixed_scores.pow(2), indices)
        loss = reconstruction_loss
        adversarial_weight = self.current_adversarial_weight()
        if adversarial_weight > 0:
            # Before adversarial_start no gradient flows back through the
            # critic and the decoded interpolants: they only teach the critic.
            loss = loss + adversarial_weight * adversarial_loss
        # The neighbourhood smoothing term of AutoencoderNet, when enabled.
        smoothing = self.smoothing_loss(embedding, indices)
        if smoothing is not None:
            loss = loss + smoothing

        # The blends see the reconstructions detached: only the critic learns
        # from this term.
        blend = self.gamma * X + (1 - self.gamma) * reconstruction.detach()
        blend_scores = self.critic_(blend)
        critic_loss = self.weighted_mean(
            (mixed_scores - alpha).pow(2), indices
        ) + self.weighted_mean(blend_scores.pow(2), indices)

        # Each backward pass is restricted to its own network's parameters
        # (``inputs``): the autoencoder's loss flows through the critic into
        # the autoencoder without touching the critic's gradients, and the
        # critic's loss stops at the critic. Both gradients are taken before
        # either network moves (simultaneous updates, as in the paper).
        self.optimizer_.zero_grad()
        self.critic_optimizer_.zero_grad()
        self.backward(loss, inputs=list(self.module_.parameters()), retain_graph=True)
        self.backward(critic_loss, inputs=list(self.critic_.parameters()))
        self.synchronize_gradients()
        # As skorch's own step does, between the gradients and the update:
        # gradient clipping and other such callbacks act on both networks.
        self.notify(
            "on_grad_computed",
            named_parameters=TeeGenerator(self.get_all_learnable_params()),
            batch=batch,
            training=True,
        )
        self.optimizer_.step()
        self.critic_optimizer_.step()

        self.history.record_batch("reconstruction_loss", reconstruction_loss.item())
        self.history.record_batch("adversarial_loss", adversarial_loss.item())
        self.history.record_batch("critic_loss", critic_loss.item())
        return {"loss": loss.detach(), "y_pred": (reconstruction, embedding)}


@fill_doc
class ACAIKMeans(AutoencoderKMeans):
    """Autoencoder trained with an adversarial interpolation critic, then k-means.

    Adversarially Constrained Autoencoder Interpolation (ACAI) [1]_ adds a
    critic network to the autoencoder. Latent codes of two samples are mixed,
    ``z_mix = alpha * z_1 + (1 - alpha) * z_2`` with ``alpha`` drawn from
    ``[0, 0.5]``, and decoded; the critic learns to predict ``alpha`` from the
    decoded mix, while the autoencoder learns, besides reconstructing, to
    fool the critic into predicting 0 (interpolants that look like real
    reconstructions). Realistic interpolation pushes the codes to follow the
    data's structure, which makes them better for k-means (Table 2 of [1]_).
    Only the training of the autoencoder differs from
    :class:`AutoencoderKMeans`; k-means then clusters the embedding.

    Parameters
    ----------
    {n_clusters}
    hidden_dims : tuple of int or "auto", default="auto"
        Widths of the encoder's hidden layers (the decoder mirrors them, and
        the critic copies the encoder). Ignored when ``input_shape`` or
        ``encoder`` is given.
        ``"auto"`` uses ``(500, 500, 2000)``, the network of Xie et al.
        (2016), from 5,000 training samples on and ``(256, 128)`` below:
        the larger network needs more data and more steps than a small
        set offers.
    {embedding_dim}
    input_shape : tuple of int, default=None
        ``(channels, height, width)`` of one sample. When given, ``X`` (still
        passed flat) is reshaped to images and a convolutional autoencoder
        (and critic) is used.
    {input_scaling}
    {center_input}
    {augment}
    encoder, decoder : torch.nn.Module, default=None
        Your own modules. The encoder maps a batch of samples (flat, or shaped
        by ``input_shape``) to ``(batch, embedding)``; the decoder maps back.
        They are copied before training, so the instances you pass stay
        untouched. The critic is a re-initialised copy of the encoder.
    {normalize_embedding_as_autoencoder_kmeans}
    pretrain_epochs : int or "auto", default="auto"
        Epochs of adversarially regularised autoencoder training.
        {pretrain_epochs_auto}
    smoothing_weight : float or "auto", default=0.0
        Weight of the neighbourhood smoothing term of
        :class:`AutoencoderKMeans`, which pulls each sample's embedding
        towards the mean embedding of its ``n_neighbors`` nearest
        neighbours. ``0`` trains without it, as in the paper: the critic's
        term already shapes the embedding, and with both the embedding
        clustered worse than with the critic alone (see Notes). ``"auto"`` is
        :class:`AutoencoderKMeans`' rule: ``1.0`` from 5,000 training
        samples on, ``0`` below.
    {n_neighbors}
    {smoothing_start}
    {batch_size}
    lr : float, default=1e-3
        Learning rate of the two Adam optimisers (autoencoder and critic).
    adversarial_weight : float, default=0.125
        Weight ``lambda`` of the critic term in the autoencoder's loss.
        The paper's 0.5 goes with pixels scaled to ``[-1, 1]``; on inputs in
        ``[0, 1]`` the squared reconstruction error is four times smaller
        while the critic's term, which regresses ``alpha``, is not, so 0.125
        keeps the paper's balance (see Notes). ``0`` trains a plain
        autoencoder (the critic still learns, but has no effect).
    adversarial_start : float in [0, 1], default=0.5
        Fraction of ``pretrain_epochs`` in which the autoencoder trains on
        reconstruction alone before the critic's term enters its loss; the
        critic itself trains from the first epoch. ``0`` gives the paper's
        schedule. This package's addition (see Notes).
    gamma : float, default=0.2
        Blend ``gamma * x + (1 - gamma) * reconstruction`` on which the critic
        is trained to output 0; in ``[0, 1]``.
    {n_init_kmeans}
    {kmeans_selection}
    {clustering}
    {device}
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation (autoencoder and critic), batch shuffling,
        the interpolation coefficients and k-means. ``fit`` draws every
        random number from generators seeded from ``random_state`` and owned
        by that fit, never from torch's global generator, so fits running in
        concurrent threads do not disturb one another. Pass an int for
        reproducible labels: on the CPU, the same ``random_state`` with the
        same number of PyTorch threads gives the same labels (see the user
        guide's differences from KMeans). ``None`` draws the seeds from
        NumPy's global generator. Your own ``encoder`` and ``decoder`` may
        draw from torch's global generator themselves (dropout): ``fit``
        then seeds it from ``random_state`` and restores it afterwards,
        which keeps such a fit reproducible as long as no other thread draws
        from it meanwhile.
    verbose : int, default=0
        Print skorch's per-epoch progress table when positive (with the
        critic's loss).
    memory : str, joblib.Memory or None, default=None
        Cache of the pretrained autoencoder: the path of a cache directory or
        a :class:`joblib.Memory`. A fit whose pretraining repeats an earlier
        one (same data, network, pretraining parameters and seed, so an int
        ``random_state``) loads the trained autoencoder instead of training
        it, and gives the same result. ACAIKMeans pretrains with its critic,
        in entries of its own. ``None`` caches nothing.
    {callbacks_pretraining}
    optimizer : torch.optim.Optimizer class, default=torch.optim.Adam
        Optimiser class of the autoencoder's net (stage ``"pretraining"``),
        built with ``lr`` and the ``optimizer__*`` keywords. The critic's
        optimiser has the same class, ``lr`` and ``optimizer__*`` keywords
        (but not ``optimizer__param_groups``, whose patterns name the
        autoencoder's parameters); ``critic_optimizer__*`` keywords (e.g.
        ``critic_optimizer__lr``, ``critic_optimizer__weight_decay``) set it
        apart.
    {kwargs}

    Attributes
    ----------
    {kmeans_on_embedding}
    net_ : skorch.NeuralNet
        The fitted net: ``net_.module_`` is the autoencoder, ``net_.critic_``
        the critic; ``net_.history`` holds the losses
        (``reconstruction_loss``, ``adversarial_loss`` and ``critic_loss``
        per batch, ``train_loss`` and ``critic_loss`` per epoch).
    {kmeans_all_centres}
    {augment_fitted}
    {features_in}

    See Also
    --------
    AutoencoderKMeans : The same without the critic.
    SNNLKMeans : An autoencoder regularised with the soft nearest neighbour loss.

    Notes
    -----
    {note_dropped_kmeans_centres}

    Once the critic's term is in, each step costs about two and a half
    plain autoencoder steps (one more decoder pass and two critic passes,
    and the backward pass through them). The paper clusters all 70,000
    MNIST digits with a convolutional network and a 256-dimensional latent
    (96.2 % accuracy reported); the defaults here are the fully connected
    DEC-style network of :class:`AutoencoderKMeans`, for a like-for-like
    comparison.

    The paper scales pixels to ``[-1, 1]``; with inputs in ``[0, 1]`` the
    squared reconstruction error is a quarter as large, so the paper's
    ``lambda=0.5`` would weigh the critic four times more against
    reconstruction than in [1]_. The default ``0.125`` restores the paper's
    balance. For inputs on another scale, scale ``adversarial_weight`` with
    the squared reconstruction error.

    With a unit-length embedding (``normalize_embedding``) every code lies
    on the unit sphere, and each interpolant is scaled back to unit length
    before it is decoded (a normalised linear interpolation, which follows
    the great circle between the two codes); the paper's codes are
    unbounded and its interpolants linear, as they stay without unit
    length. Decoded from inside the sphere, where no sample's code lies,
    an interpolant would differ from every reconstruction by the norm of
    its code, a cue that says nothing about the path between the two
    samples; on the sphere the critic judges the path itself. The evidence
    is in ``benchmarks/NOTES.rst``.

    {note_sample_weight}

    {note_sample_weight_pretraining}

    The critic's term enters the autoencoder's loss only after the first
    ``adversarial_start`` fraction of the epochs (by default half); the
    paper regularises from the first step (``adversarial_start=0``). Early
    on, the codes have no structure yet and the reconstructions are poor,
    so the critic's verdict on the interpolants says little about the path
    between two samples; applied from the start it shaped an embedding that
    k-means and the neighbour graph clustered worse than the plain
    autoencoder's. Once the autoencoder has organised its codes, the term
    refines them. The evidence is in ``benchmarks/NOTES.rst``.

    The autoencoder trains without :class:`AutoencoderKMeans`' neighbourhood
    smoothing by default (``smoothing_weight=0``), as in the paper. The
    smoothing pulls each code toward the mean of its neighbours, while the
    critic's term shapes the decoded path between the codes of random pairs
    of samples; on MNIST-test the two together gave an embedding whose
    partitions were less accurate than with either alone. The evidence is
    in ``benchmarks/NOTES.rst``.

    The adversarial term of a sample's interpolant, and the critic's terms
    for that interpolant and for the blend of the sample with its
    reconstruction, carry the sample's weight (not that of its interpolation
    partner).

    References
    ----------
    {reference_acai}

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from skdeepcluster import ACAIKMeans
    >>> X, _ = make_blobs(n_samples=60, centers=3, random_state=0)
    >>> model = ACAIKMeans(n_clusters=3, hidden_dims=(16,), embedding_dim=2,
    ...                    pretrain_epochs=5, random_state=0).fit(X)
    >>> model.labels_.shape
    (60,)
    >>> len(model.net_.history[:, "critic_loss"])
    5
    """

    # The critic's optimiser has settings of its own (see ``optimizer``).
    _ROUTED_PREFIXES = (*AutoencoderKMeans._ROUTED_PREFIXES, "critic_optimizer__")

    _parameter_constraints: dict = {
        **AutoencoderKMeans._parameter_constraints,
        "adversarial_weight": [Interval(Real, 0, None, closed="left")],
        "adversarial_start": [Interval(Real, 0, 1, closed="both")],
        "gamma": [Interval(Real, 0, 1, closed="both")],
    }

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        hidden_dims: HiddenDims | Literal["auto"] = "auto",
        embedding_dim: int = 10,
        input_shape: InputShape = None,
        input_scaling: Literal["auto"] | None = "auto",
        center_input: bool = False,
        augment: bool | Literal["auto"] = "auto",
        encoder: torch.nn.Module | None = None,
        decoder: torch.nn.Module | None = None,
        normalize_embedding: bool | Literal["auto"] = "auto",
        pretrain_epochs: IntOrAuto = "auto",
        smoothing_weight: FloatOrAuto = 0.0,
        n_neighbors: int = 10,
        smoothing_start: float = 0.5,
        batch_size: int = 256,
        lr: float = 1e-3,
        adversarial_weight: float = 0.125,
        adversarial_start: float = 0.5,
        gamma: float = 0.2,
        n_init: IntOrAuto = 10,
        kmeans_selection: str = "modularity",
        clustering: Literal["auto", "umap", "spectral", "kmeans"] = "auto",
        device: Device = "cpu",
        random_state: RandomStateLike = None,
        verbose: int = 0,
        memory: MemoryLike = None,
        callbacks: Callbacks = None,
        optimizer: OptimizerFactory = torch.optim.Adam,
        **kwargs: Any,
    ) -> None:
        self.adversarial_weight = adversarial_weight
        self.adversarial_start = adversarial_start
        self.gamma = gamma
        super().__init__(
            n_clusters=n_clusters,
            hidden_dims=hidden_dims,
            embedding_dim=embedding_dim,
            input_shape=input_shape,
            input_scaling=input_scaling,
            center_input=center_input,
            augment=augment,
            encoder=encoder,
            decoder=decoder,
            normalize_embedding=normalize_embedding,
            pretrain_epochs=pretrain_epochs,
            smoothing_weight=smoothing_weight,
            n_neighbors=n_neighbors,
            smoothing_start=smoothing_start,
            batch_size=batch_size,
            lr=lr,
            n_init=n_init,
            kmeans_selection=kmeans_selection,
            clustering=clustering,
            device=device,
            random_state=random_state,
            verbose=verbose,
            memory=memory,
            callbacks=callbacks,
            optimizer=optimizer,
            **kwargs,
        )

    def _pretrain(
        self, X, random_state, sample_weight=None, net_cls=None, **net_params
    ):
        # The only change from AutoencoderKMeans: the autoencoder is trained
        # by ACAINet. Everything else (network, schedule, k-means) is shared.
        return super()._pretrain(
            X,
            random_state,
            sample_weight,
            net_cls=net_cls or ACAINet,
            adversarial_weight=self.adversarial_weight,
            adversarial_start=round(self.adversarial_start * self._pretrain_epochs),
            gamma=self.gamma,
            unit_embedding=self._normalize_embedding,
            **net_params,
        )

    def _steps_with_closure(self):
        # ACAINet takes both networks' gradients before either optimiser
        # steps, once per batch: there is no closure to evaluate again.
        return False

    def _check_optimizer(self):
        # The critic's optimiser too, with the keywords ACAINet builds it with.
        super()._check_optimizer()
        own = _without_prefix(self._routed_params(), "critic_optimizer__")
        shared = _critic_shared_keywords(
            _without_prefix(self._optimizer_keywords(), "optimizer__"), own
        )
        own.pop("param_groups", None)
        self._check_optimizer_steps({**shared, **own}, "critic_optimizer")


def _critic_shared_keywords(optimizer_keywords, critic_keywords):
    """The ``optimizer__`` keywords the critic's optimiser takes as well.

    All but the parameter groups, whose patterns name the autoencoder's
    parameters, and ``foreach`` when the critic's own keywords ask for the
    fused update, which torch takes only without it.
    """
    shared = dict(optimizer_keywords)
    shared.pop("param_groups", None)
    if critic_keywords.get("fused"):
        shared.pop("foreach", None)
    return shared
