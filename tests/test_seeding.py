"""Seeding: every random draw of a fit comes from generators the fit owns.

Fits in concurrent threads must give what they give one after the other, a
fit must leave the caller's global generators (torch's and NumPy's) alone,
and the labels must follow ``random_state`` and nothing else.
"""

import math
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from joblib import parallel_backend
from numpy.testing import assert_array_equal
from sklearn.model_selection import GridSearchCV, KFold
from skorch.callbacks import Callback

from conftest import all_estimators, fast_estimator
from skdeepcluster import ACAIKMeans, AutoencoderKMeans
from skdeepcluster._torch_utils import build_module, init_parameters, make_generator
from skdeepcluster.metrics import ari_scorer
from skdeepcluster.nn import ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder

ESTIMATORS = all_estimators()
ids = [cls.__name__ for cls in ESTIMATORS]


def _fit(cls, X, random_state, **params):
    return fast_estimator(cls, n_clusters=3, random_state=random_state, **params).fit(X)


def _outputs(model, X):
    return model.labels_, model.transform(X)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_concurrent_fits_match_sequential_fits(cls, blobs):
    X, _ = blobs
    seeds = [0, 1]
    sequential = [_outputs(_fit(cls, X, seed), X) for seed in seeds]
    # Both threads start fitting together; a generator shared between them
    # (torch's global one) would interleave their draws.
    start = threading.Barrier(len(seeds))

    def fit(seed):
        start.wait()
        return _outputs(_fit(cls, X, seed), X)

    with ThreadPoolExecutor(len(seeds)) as pool:
        concurrent = list(pool.map(fit, seeds))
    for (labels, embedding), (expected_labels, expected_embedding) in zip(
        concurrent, sequential
    ):
        assert_array_equal(labels, expected_labels)
        assert_array_equal(embedding, expected_embedding)


def test_threaded_grid_search_scores_match_sequential(blobs):
    X, y = blobs
    grid = dict(lr=[1e-3, 1e-2])

    def search(n_jobs):
        search = GridSearchCV(
            fast_estimator(ACAIKMeans, n_clusters=3, random_state=0),
            grid,
            scoring=ari_scorer,
            cv=KFold(2, shuffle=True, random_state=0),
            n_jobs=n_jobs,
        )
        with parallel_backend("threading"):
            return search.fit(X, y).cv_results_

    sequential, threaded = search(1), search(2)
    for key in ("split0_test_score", "split1_test_score"):
        assert_array_equal(threaded[key], sequential[key])


class _GlobalStateRecorder(Callback):
    """Records the global generators' states after every training batch.

    The list is shared through the closure of ``record``, not an attribute:
    the estimators deep-copy their callbacks for every net.
    """

    def __init__(self, record):
        self.record = record

    def on_batch_end(self, net, **kwargs):
        self.record(torch.random.get_rng_state(), np.random.get_state()[1])


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_fit_never_draws_from_the_global_generators(cls, blobs):
    X, _ = blobs
    torch.manual_seed(123)
    np.random.seed(123)
    torch_state = torch.random.get_rng_state()
    numpy_state = np.random.get_state()[1].copy()
    seen = []
    _fit(
        cls,
        X,
        0,
        callbacks=[_GlobalStateRecorder(lambda *states: seen.append(states))],
    )
    assert seen  # training ran batches
    # Not only restored at the end: untouched while training draws.
    for torch_during, numpy_during in seen:
        assert torch.equal(torch_during, torch_state)
        assert_array_equal(numpy_during, numpy_state)
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    assert_array_equal(np.random.get_state()[1], numpy_state)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_labels_follow_random_state_only(cls, blobs):
    X, _ = blobs
    outputs = []
    for global_seed in (1, 2):
        # The caller's global generators have no say in the result.
        torch.manual_seed(global_seed)
        np.random.seed(global_seed)
        outputs.append(_outputs(_fit(cls, X, 7), X))
    (labels, embedding), (other_labels, other_embedding) = outputs
    assert_array_equal(labels, other_labels)
    assert_array_equal(embedding, other_embedding)
    # ...while random_state has.
    assert not np.array_equal(_fit(cls, X, 8).transform(X), embedding)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_every_generator_of_every_net_follows_random_state(cls, blobs, at_train_begin):
    # A different random_state changes the networks' initial weights anyway,
    # so the test above cannot see whether the draws of the training steps
    # (shuffling; ACAI's mixing, VAT's directions, DAC's augmentation) follow
    # it too: the seeds of the generators they are drawn from are compared.
    X, _ = blobs
    seeds = at_train_begin(
        lambda net: (
            net.iterator_train__generator.initial_seed(),
            net.device_generator.initial_seed(),
        )
    )
    fits = []
    for random_state in (7, 7, 8):
        start = len(seeds)
        _fit(cls, X, random_state)
        fits.append(seeds[start:])
    first, again, other = fits
    assert first and first == again
    # The first net of each fit (how many follow can depend on the data's
    # partition: DAC's refinement runs only after a move, for instance).
    (shuffle, draws), (other_shuffle, other_draws) = first[0], other[0]
    assert shuffle != other_shuffle
    assert draws != other_draws


def test_user_modules_seed_no_other_device(blobs, monkeypatch):
    # A CPU fit with the user's modules seeds the CPU generator only: seeding
    # every CUDA device (torch.manual_seed) would outlast the fit there.
    X, _ = blobs
    seeded = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", seeded.append)
    monkeypatch.setattr(torch.cuda, "manual_seed", seeded.append)
    encoder, decoder = torch.nn.Linear(4, 2), torch.nn.Linear(2, 4)
    _fit(AutoencoderKMeans, X, 0, encoder=encoder, decoder=decoder)
    assert seeded == []


class _FakeGenerator:
    def manual_seed(self, seed):
        self.seed = seed


@pytest.mark.parametrize("device", ["cuda", "cuda:1", "mps"])
def test_user_modules_seed_the_fit_device_and_restore_it(monkeypatch, device):
    # No such device here: torch's functions for it are stood in for. The
    # device's generator is seeded inside the block and restored after, the
    # current CUDA device's when no index is given. torch lists the CUDA
    # generators only once CUDA is initialised, which the block must ask
    # for first.
    from skdeepcluster._torch_utils import torch_seed

    calls = []
    generators = [_FakeGenerator(), _FakeGenerator()]
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    monkeypatch.setattr(torch.cuda, "default_generators", ())
    monkeypatch.setattr(
        torch.cuda,
        "init",
        lambda: monkeypatch.setattr(torch.cuda, "default_generators", generators),
    )
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda i: f"state {i}")
    monkeypatch.setattr(
        torch.cuda, "set_rng_state", lambda state, i: calls.append((state, i))
    )
    monkeypatch.setattr(torch.mps, "get_rng_state", lambda: "mps state")
    monkeypatch.setattr(torch.mps, "manual_seed", lambda seed: calls.append(seed))
    monkeypatch.setattr(torch.mps, "set_rng_state", calls.append)
    with torch_seed(7, torch.device(device)):
        pass
    if device == "mps":
        assert calls == [7, "mps state"]
    else:
        assert generators[1].seed == 7
        assert not hasattr(generators[0], "seed")
        assert calls == [("state 1", 1)]


def test_overlapping_user_module_seeds_leave_the_callers_state():
    # Fits with user modules running in threads overlap: whichever of them
    # ends first, the caller's global state is back once both have.
    from skdeepcluster._torch_utils import torch_seed

    cpu = torch.device("cpu")
    for first_to_end in (0, 1):
        torch.manual_seed(123)
        before = torch.get_rng_state()
        blocks = [torch_seed(1, cpu), torch_seed(2, cpu)]
        for block in blocks:
            block.__enter__()
        blocks[first_to_end].__exit__(None, None, None)
        # The other fit is still under way: its seeding stands.
        assert not torch.equal(torch.get_rng_state(), before)
        blocks[1 - first_to_end].__exit__(None, None, None)
        assert torch.equal(torch.get_rng_state(), before)


def test_user_modules_with_dropout_follow_random_state(blobs):
    # Dropout in the user's modules draws from torch's global generator: the
    # fit seeds it from random_state for them and restores it after.
    X, _ = blobs

    def modules():
        encoder = torch.nn.Sequential(
            torch.nn.Linear(4, 16),
            torch.nn.ReLU(),
            torch.nn.Dropout(0.5),
            torch.nn.Linear(16, 2),
        )
        decoder = torch.nn.Sequential(
            torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4)
        )
        return dict(encoder=encoder, decoder=decoder)

    torch.manual_seed(0)
    given = modules()
    state = torch.random.get_rng_state()
    fits = [_fit(AutoencoderKMeans, X, seed, **given) for seed in (0, 0, 1)]
    assert torch.equal(torch.random.get_rng_state(), state)
    assert_array_equal(fits[0].transform(X), fits[1].transform(X))
    assert not np.array_equal(fits[0].transform(X), fits[2].transform(X))


# -- building and initialising modules ---------------------------------------


@pytest.mark.parametrize(
    "factory",
    [
        lambda: MLPEncoder(6, (5, 4), 3, batch_norm=True),
        lambda: MLPDecoder(3, (4,), (2, 3)),
        lambda: ConvEncoder((1, 7, 7), 3, channels=(2, 4)),
        lambda: ConvDecoder((1, 7, 7), 3, channels=(2, 4)),
    ],
    ids=["mlp-encoder", "mlp-decoder", "conv-encoder", "conv-decoder"],
)
def test_build_module_draws_torch_default_weights_from_the_generator(factory):
    # The same distributions as torch's own initialisation: with the global
    # generator seeded as the fit's generator, even the same values.
    torch.manual_seed(3)
    reference = factory()
    state = torch.random.get_rng_state()
    built = build_module(factory, make_generator(3))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert built.state_dict().keys() == reference.state_dict().keys()
    for name, value in reference.state_dict().items():
        assert torch.equal(built.state_dict()[name], value), name
        assert built.state_dict()[name].device.type == "cpu"


def test_build_module_rejects_layers_it_cannot_initialise():
    class Scaled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(3))

    with pytest.raises(TypeError, match="Scaled"):
        build_module(Scaled, make_generator(0))


def test_init_parameters_seeds_other_layers_reset_from_the_generator():
    # A layer of a type it does not know (an embedding) is reset by its own
    # reset_parameters, from the global generator seeded for the call.
    def module():
        return torch.nn.Sequential(torch.nn.Embedding(5, 3), torch.nn.Linear(3, 2))

    first, second, other = module(), module(), module()
    state = torch.random.get_rng_state()
    init_parameters(first, make_generator(0))
    init_parameters(second, make_generator(0))
    init_parameters(other, make_generator(1))
    assert torch.equal(torch.random.get_rng_state(), state)
    for a, b in zip(first.parameters(), second.parameters()):
        assert torch.equal(a, b)
    assert not torch.equal(first[0].weight, other[0].weight)
    # Still the embedding's own distribution, N(0, 1), not a uniform one.
    assert first[0].weight.abs().max() > 1 / math.sqrt(3)
