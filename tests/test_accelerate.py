"""Data-parallel training with Hugging Face Accelerate (the ``accelerator`` keyword)."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score

from conftest import FAST_PARAMS, all_estimators

accelerate = pytest.importorskip(
    "accelerate", reason="accelerate is not installed (pip install accelerate)"
)

from skdeepcluster import AutoencoderKMeans  # noqa: E402

NAMES = [cls.__name__ for cls in all_estimators()]

# Fits every estimator on blobs with an Accelerator and writes, per process,
# the labels and a checksum of every net's parameters.
SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from accelerate import Accelerator
    from sklearn.datasets import make_blobs
    sys.path.insert(0, {tests!r})
    from conftest import FAST_PARAMS
    import skdeepcluster
    from skorch.callbacks import Callback

    class GradientNorms(Callback):
        # What a callback acting on the gradients (clipping) sees.
        def on_grad_computed(self, net, named_parameters, **kwargs):
            norms.append(sum(float(p.grad.norm()) for _, p in named_parameters
                             if p.grad is not None))

    X, y = make_blobs(n_samples=120, centers=3, n_features=6, cluster_std=0.6,
                      random_state=0)
    X = X.astype(np.float32)
    accelerator = Accelerator(cpu=True)
    out = {{"y": y.tolist(), "n_processes": accelerator.num_processes}}
    for name in {names!r}:
        params = dict(FAST_PARAMS[name], verbose=0)
        params["batch_size"] *= {batch_scale!r}
        norms = []
        estimator = getattr(skdeepcluster, name)(
            n_clusters=3, random_state=0, accelerator=accelerator,
            callbacks=[("norms", GradientNorms())], **params
        ).fit(X)
        weights = [
            float(p.detach().double().sum()) + float(p.detach().double().abs().sum())
            for p in estimator.net_.module_.parameters()
        ]
        out[name] = {{"labels": estimator.labels_.tolist(), "weights": weights,
                      "net": type(estimator.net_).__name__, "norms": norms}}
    # DAC drops the short last batch: one batch of all the samples would
    # leave a process with none.
    params = dict(FAST_PARAMS["DAC"], verbose=0, batch_size=len(X))
    dac = skdeepcluster.DAC(
        n_clusters=3, random_state=0, accelerator=accelerator, **params
    ).fit(X)
    out["DAC batches"] = [len(epoch["batches"]) for epoch in dac.net_.history]
    with open(f"{{sys.argv[1]}}/rank{{accelerator.process_index}}.json", "w") as f:
        json.dump(out, f)
    """
)


def _run(tmp_path, n_processes, batch_scale=1):
    script = tmp_path / "fit.py"
    script.write_text(
        SCRIPT.format(
            tests=str(Path(__file__).parent), names=NAMES, batch_scale=batch_scale
        )
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")]
        ),
        "OMP_NUM_THREADS": "1",
    }
    if n_processes == 1:
        command = [sys.executable, str(script), str(tmp_path)]
    else:
        torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
        if torchrun is None:
            pytest.skip("torchrun is not installed beside the Python interpreter")
        command = [
            torchrun,
            "--standalone",
            f"--nproc_per_node={n_processes}",
            str(script),
            str(tmp_path),
        ]
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return [
        json.loads((tmp_path / f"rank{rank}.json").read_text())
        for rank in range(n_processes)
    ]


def test_two_processes_stay_in_step_and_cluster(tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    # Each optimiser step of two processes sees two batches: the single
    # process is given batches of the same total size.
    (single,) = _run(tmp_path / "one", 1, batch_scale=2)
    ranks = _run(tmp_path / "two", 2)
    assert [rank["n_processes"] for rank in ranks] == [2, 2]
    y = np.asarray(single["y"])
    aris_two, aris_one = [], []
    for name in NAMES:
        first, second = ranks[0][name], ranks[1][name]
        # The fitted net is the plain one, without accelerate.
        assert not first["net"].startswith("Accelerated")
        # The processes end with the same network and the same labels.
        np.testing.assert_allclose(first["weights"], second["weights"], rtol=1e-6)
        # Callbacks on the gradients see the whole batch's, the same in both.
        assert first["norms"], name
        np.testing.assert_allclose(first["norms"], second["norms"], rtol=1e-5)
        assert first["labels"] == second["labels"]
        aris_two.append(adjusted_rand_score(y, first["labels"]))
        aris_one.append(adjusted_rand_score(y, single[name]["labels"]))
    # And they cluster about as well as one process with the same total batch
    # does, on average over the estimators: they see the samples in another
    # order, which can move one tiny network to another partition (on one
    # processor ACAIKMeans gave an ARI of 0.73 against 0.90).
    assert np.mean(aris_two) >= np.mean(aris_one) - 0.1, (aris_two, aris_one)
    for rank in ranks:
        assert rank["DAC batches"] and min(rank["DAC batches"]) >= 1


@pytest.fixture(scope="module")
def accelerator():
    return accelerate.Accelerator(cpu=True)


def test_accelerator_is_a_parameter(accelerator):
    estimator = AutoencoderKMeans(n_clusters=3, accelerator=accelerator)
    assert estimator.get_params()["accelerator"] is accelerator
    assert "accelerator" in clone(estimator).get_params()
    assert estimator.set_params(accelerator=None).get_params()["accelerator"] is None


def test_accelerator_none_changes_nothing(blobs):
    X, _ = blobs
    params = dict(FAST_PARAMS["AutoencoderKMeans"], n_clusters=3, random_state=0)
    plain = AutoencoderKMeans(**params).fit(X)
    routed = AutoencoderKMeans(**params, accelerator=None).fit(X)
    np.testing.assert_array_equal(plain.labels_, routed.labels_)
    np.testing.assert_array_equal(plain.cluster_centers_, routed.cluster_centers_)


def test_one_process_fit_is_plain_and_pickles(blobs, accelerator):
    import pickle

    X, y = blobs
    estimator = AutoencoderKMeans(
        n_clusters=3,
        random_state=0,
        accelerator=accelerator,
        verbose=0,
        **FAST_PARAMS["AutoencoderKMeans"],
    ).fit(X)
    assert type(estimator.net_).__name__ == "AutoencoderNet"
    assert not hasattr(estimator.net_, "accelerator")
    loaded = pickle.loads(pickle.dumps(estimator))
    np.testing.assert_array_equal(loaded.predict(X), estimator.labels_)


def test_fit_leaves_the_accelerator_as_it_found_it(blobs):
    # Accelerate keeps every object it prepares (a data loader per stage,
    # with the data) until free_memory: a fit drops its own, and keeps the
    # user's.
    import pickle

    import torch

    X, _ = blobs
    accelerator = accelerate.Accelerator(cpu=True)
    users_model = accelerator.prepare_model(torch.nn.Linear(2, 2))
    registries = ("_models", "_optimizers", "_schedulers", "_dataloaders")
    before = {name: list(getattr(accelerator, name)) for name in registries}
    assert before["_models"] == [users_model]
    estimator = AutoencoderKMeans(
        n_clusters=3,
        random_state=0,
        accelerator=accelerator,
        verbose=0,
        **FAST_PARAMS["AutoencoderKMeans"],
    )
    size = len(pickle.dumps(estimator.fit(X)))
    for name, objects in before.items():
        assert getattr(accelerator, name) == objects, name
    # A second fit adds nothing to the first one's pickle.
    clone(estimator).fit(X)
    assert len(pickle.dumps(estimator)) == size
    accelerator.free_memory()


def test_fit_drops_its_objects_also_after_a_free_memory_within_it(blobs):
    # free_memory puts new lists on the accelerator: what they hold after
    # it was prepared by the fit (here DEC's clustering stage).
    from skorch.callbacks import Callback

    from skdeepcluster import DEC

    class FreeMemory(Callback):
        def on_epoch_end(self, net, **kwargs):
            if net.stage == "pretraining" and len(net.history) == 1:
                net.accelerator.free_memory()

    X, _ = blobs
    accelerator = accelerate.Accelerator(cpu=True)
    DEC(
        n_clusters=3,
        random_state=0,
        accelerator=accelerator,
        verbose=0,
        callbacks=[FreeMemory()],
        **FAST_PARAMS["DEC"],
    ).fit(X)
    for name in ("_models", "_optimizers", "_schedulers", "_dataloaders"):
        assert getattr(accelerator, name) == [], name


@pytest.mark.parametrize("split_batches", [False, True])
def test_dac_batch_fits_each_process_share(split_batches):
    # Batches dealt out whole need one full batch per process; batches
    # split among the processes do not.
    from types import SimpleNamespace

    from skdeepcluster import DAC

    stand_in = SimpleNamespace(num_processes=4, split_batches=split_batches)
    model = DAC(batch_size=256, accelerator=stand_in)
    expected = 256 if split_batches else 250
    assert model._training_batch_size(1000) == expected
    assert DAC(batch_size=256)._training_batch_size(1000) == 256
    assert DAC(batch_size=256)._training_batch_size(100) == 100


class _UsersAccelerator(accelerate.Accelerator):
    pass


@pytest.mark.parametrize("subclass", [False, True], ids=["Accelerator", "subclass"])
@pytest.mark.parametrize("verbose", [0, 1])
def test_progress_follows_verbose(blobs, accelerator, capsys, verbose, subclass):
    # The accelerator's print is the progress table's sink, which skorch
    # would write to whatever verbose says.
    X, _ = blobs
    if subclass:
        accelerator = _UsersAccelerator(cpu=True)
    AutoencoderKMeans(
        n_clusters=3,
        random_state=0,
        accelerator=accelerator,
        verbose=verbose,
        **FAST_PARAMS["AutoencoderKMeans"],
    ).fit(X)
    out = capsys.readouterr().out
    assert ("AutoencoderKMeans: pretraining" in out) == bool(verbose)


def test_bad_accelerator_and_memory(blobs, accelerator, tmp_path):
    X, _ = blobs
    params = dict(FAST_PARAMS["AutoencoderKMeans"], n_clusters=3)
    with pytest.raises(TypeError, match="accelerate.Accelerator"):
        AutoencoderKMeans(**params, accelerator="cuda").fit(X)
    with pytest.raises(ValueError, match="memory"):
        AutoencoderKMeans(**params, accelerator=accelerator, memory=str(tmp_path)).fit(
            X
        )
