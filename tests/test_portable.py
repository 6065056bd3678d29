"""Fitted models that pickle compactly and load on a machine without the
device they were trained on."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from skorch import NeuralNet

from conftest import all_estimators, fast_estimator
from skdeepcluster._torch_utils import resolve_device

ESTIMATORS = all_estimators()
ids = [cls.__name__ for cls in ESTIMATORS]

# Per-sample state that the nets carry only while training.
TRAINING_STATE = {
    "DEC": ["target_"],
    "DCN": ["assignments_", "centers_", "counts_"],
    "IMSAT": ["radius_"],
    "SNNLKMeans": ["labels_", "anchor_indices_", "anchor_X_"],
}


def nets(model):
    return [value for value in vars(model).values() if isinstance(value, NeuralNet)]


def tensor_attributes(net):
    return [
        name for name, value in vars(net).items() if isinstance(value, torch.Tensor)
    ]


@pytest.fixture(scope="module")
def fitted(blobs):
    X, _ = blobs
    return {
        cls.__name__: fast_estimator(cls, n_clusters=3, random_state=0).fit(X)
        for cls in ESTIMATORS
    }


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_pickle_round_trip_predicts_the_same(cls, fitted, blobs):
    X, _ = blobs
    model = fitted[cls.__name__]
    loaded = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))
    np.testing.assert_array_equal(loaded.labels_, model.labels_)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_pickle_without_the_resolved_input_shape_predicts(cls, fitted, blobs):
    # A model pickled before the input shape was resolved at fit takes the
    # parameter's when it is loaded.
    X, _ = blobs
    model = fitted[cls.__name__]
    state = model.__getstate__()
    del state["_input_shape"]
    loaded = cls.__new__(cls)
    loaded.__setstate__(state)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_no_training_state_is_kept(cls, fitted):
    model = fitted[cls.__name__]
    for net in nets(model):
        assert tensor_attributes(net) == []
        for name in TRAINING_STATE.get(cls.__name__, []):
            assert getattr(net, name, None) is None
        # A generator on a GPU could not be unpickled without one.
        assert net.device_generator is None
        # Nor do its callbacks (the schedules' labels at the last refresh).
        for _, callback in net.callbacks_:
            assert tensor_attributes(callback) == []


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_model_trained_on_another_device_pickles_for_the_cpu(cls, blobs):
    # Stand-in for a model trained on a GPU: its nets and recorded device
    # say "cuda" (the tensors themselves are on the CPU here).
    X, _ = blobs
    model = fast_estimator(cls, n_clusters=3, random_state=0).fit(X)
    expected = model.predict(X)
    for net in nets(model):
        net.device = "cuda"
    model._device = torch.device("cuda")

    state = model.__getstate__()
    assert state["_device"] == torch.device("cpu")
    state_nets = [value for value in state.values() if isinstance(value, NeuralNet)]
    assert state_nets
    for net in state_nets:
        assert net.device == "cpu"
        assert all(p.device.type == "cpu" for p in net.module_.parameters())
        assert tensor_attributes(net) == []
    # The model being pickled is left on its device.
    assert model._device == torch.device("cuda")
    assert all(net.device == "cuda" for net in nets(model))

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fall-back warning from skorch
        loaded = pickle.loads(pickle.dumps(model))
    assert loaded._device == torch.device("cpu")
    np.testing.assert_array_equal(loaded.predict(X), expected)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA fall-back")
@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
def test_loading_where_the_device_is_missing_falls_back_to_the_cpu(cls, fitted, blobs):
    X, _ = blobs
    model = clone(fitted[cls.__name__])
    model.__dict__.update(fitted[cls.__name__].__dict__)
    model.set_params(device="cuda")
    data = pickle.dumps(model)
    with pytest.warns(
        UserWarning, match="CUDA is not available.*runs on the CPU instead"
    ):
        loaded = pickle.loads(data)
    assert loaded.device == "cuda"
    np.testing.assert_array_equal(loaded.predict(X), fitted[cls.__name__].predict(X))


@pytest.mark.parametrize("cls", ESTIMATORS, ids=ids)
@pytest.mark.parametrize(
    "device", [None, torch.device("cpu")], ids=["None", "torch.device"]
)
def test_device_objects_and_none_mean_the_cpu(cls, device, fitted, blobs):
    X, _ = blobs
    model = fast_estimator(cls, n_clusters=3, random_state=0, device=device)
    assert clone(model).get_params()["device"] == device
    model.fit(X)
    assert model._device == torch.device("cpu")
    np.testing.assert_array_equal(model.labels_, fitted[cls.__name__].labels_)


def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("mps")
    assert resolve_device(torch.device("mps")) == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")


@pytest.mark.parametrize("device", [torch.device("meta"), "mps:1", 0])
def test_unknown_devices_are_rejected(device):
    with pytest.raises(ValueError, match="not understood"):
        resolve_device(device)


@pytest.mark.parametrize("cls", all_estimators(), ids=lambda cls: cls.__name__)
def test_fitted_nets_keep_no_optimizer_state(cls, blobs):
    # Adam's moments are twice the size of the network and only further
    # training would read them: a fitted model does not keep (or pickle) them.
    X, _ = blobs
    model = fast_estimator(cls, n_clusters=3, random_state=0).fit(X)
    nets = [value for value in vars(model).values() if isinstance(value, NeuralNet)]
    assert nets
    for net in nets:
        for name in net._optimizers:
            optimizer = getattr(net, name + "_")
            assert optimizer.param_groups, name
            assert not optimizer.state, name
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict(X), model.labels_)
