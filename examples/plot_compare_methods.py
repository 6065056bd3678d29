"""
================================
Compare the methods side by side
================================

Fit every estimator that :mod:`skdeepcluster` exports on the digits, with the
same small network and short schedule, and look at what each one learned: a
2-D t-SNE view of its embedding (the output of ``transform``), coloured by
the cluster it found. The title gives the clustering accuracy against the
true digits.

The estimators are taken from ``skdeepcluster.__all__``, so this example
covers every method of the installed version.
"""

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.cluster import KMeans
from sklearn.manifold import TSNE
from sklearn.metrics import normalized_mutual_info_score

import skdeepcluster
from skdeepcluster.datasets import load_digits
from skdeepcluster.metrics import clustering_accuracy

X, y = load_digits(return_X_y=True)

# %%
# One set of small settings for all
# ---------------------------------
# The methods have different schedules (pretraining epochs, clustering epochs,
# ...); each takes the settings below that it has. The defaults train for
# longer than a gallery example should take (IMSAT's network is the paper's,
# sized for MNIST); these settings keep it quick. IMSAT, which has no
# autoencoder, gets a wider network: with only 64 units in its last hidden
# layer it clustered these data far less accurately (about 0.70 against 0.85).
SMALL = dict(
    hidden_dims=(128, 64),
    embedding_dim=10,
    pretrain_epochs=30,
    clustering_epochs=20,
    max_epochs=30,
    random_state=0,
)
PER_METHOD = {"IMSAT": dict(hidden_dims=(256, 256))}


def make(cls):
    """``cls(n_clusters=10)`` with the settings of ``SMALL`` it accepts."""
    accepted = cls().get_params()
    settings = {**SMALL, **PER_METHOD.get(cls.__name__, {})}
    return cls(n_clusters=10, **{k: v for k, v in settings.items() if k in accepted})


estimators = {
    name: make(getattr(skdeepcluster, name))
    for name in skdeepcluster.__all__
    if isinstance(getattr(skdeepcluster, name), type)
}

# %%
# Fit, embed and score
# --------------------
# k-means on the raw pixels is the reference; its "embedding" is the pixels.
# Without labels SNNLKMeans trains AutoencoderKMeans' plain autoencoder and
# clusters it the same way, so its row repeats AutoencoderKMeans'; pass it
# labels (``use_labels=True``) to see its own loss at work. The 2-D views
# are computed on a fixed subset of 400 digits to keep t-SNE quick.
view = np.random.RandomState(0).choice(len(X), 400, replace=False)
results = {}
start = time.perf_counter()
labels = KMeans(n_clusters=10, n_init=10, random_state=0).fit_predict(X)
results["KMeans (raw pixels)"] = (X, labels, time.perf_counter() - start)
for name, model in estimators.items():
    start = time.perf_counter()
    labels = model.fit_predict(X)
    results[name] = (model.transform(X), labels, time.perf_counter() - start)

print(f"{'method':<22}{'accuracy':>9}{'NMI':>7}{'fit (s)':>9}")
for name, (_, labels, seconds) in results.items():
    print(
        f"{name:<22}{clustering_accuracy(y, labels):>9.3f}"
        f"{normalized_mutual_info_score(y, labels):>7.3f}{seconds:>9.1f}"
    )

# %%
# The embeddings
# --------------
# Each panel is a t-SNE map of one method's embedding of the same 400 digits.
# Colours are the clusters the method found; the small grey numbers are the
# true digits of a few points, to read the map.
n = len(results)
n_cols = min(n, 3)
n_rows = int(np.ceil(n / n_cols))
fig, axes = plt.subplots(
    n_rows, n_cols, figsize=(4 * n_cols, 4 * n_rows), squeeze=False
)
for ax, (name, (embedding, labels, _)) in zip(axes.flat, results.items()):
    xy = TSNE(n_components=2, init="pca", max_iter=500, random_state=0).fit_transform(
        np.asarray(embedding, dtype=np.float64)[view]
    )
    ax.scatter(xy[:, 0], xy[:, 1], c=labels[view], cmap="tab10", s=8)
    for i in range(0, len(view), 20):
        ax.annotate(str(y[view[i]]), xy[i], fontsize=7, color="0.3")
    ax.set_title(f"{name}\naccuracy {clustering_accuracy(y, labels):.2f}", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
for ax in axes.flat[n:]:
    ax.set_axis_off()
fig.tight_layout()
plt.show()
