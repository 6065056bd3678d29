"""
============================================
Quick start: from k-means to deep clustering
============================================

Every skdeepcluster estimator is used like :class:`~sklearn.cluster.KMeans`.
Here k-means on the raw pixels of the digits is compared with
:class:`~skdeepcluster.AutoencoderKMeans` (k-means on an autoencoder's
embedding) and :class:`~skdeepcluster.DEC` (which then refines that
embedding), changing only the class name.
"""

# %%
# Load the data
# -------------
# 1,797 grey-level images of 8x8 pixels, scaled to [0, 1].
import matplotlib.pyplot as plt
import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score

from skdeepcluster import DEC, AutoencoderKMeans
from skdeepcluster.datasets import load_digits
from skdeepcluster.metrics import clustering_accuracy

X, y = load_digits(return_X_y=True)
print(X.shape, X.dtype, X.min(), X.max())

# %%
# Fit three clusterers
# --------------------
# The deep estimators take the same ``n_clusters`` and ``random_state`` as
# k-means, and size their network from the data: on these 1,797 samples the
# ``"auto"`` defaults give a ``64-256-128-10`` autoencoder trained for 2,000
# steps, about ten seconds of training on a CPU.
models = {
    "KMeans": KMeans(n_clusters=10, n_init=10, random_state=0),
    "AutoencoderKMeans": AutoencoderKMeans(n_clusters=10, random_state=0),
    "DEC": DEC(n_clusters=10, random_state=0),
}
for name, model in models.items():
    labels = model.fit_predict(X)
    print(
        f"{name:<18} accuracy={clustering_accuracy(y, labels):.3f} "
        f"NMI={normalized_mutual_info_score(y, labels):.3f}"
    )

# %%
# The 64 pixels of these tiny images are already a fair representation
# (k-means on them clusters about four images in five correctly), and one
# seed says little: the :doc:`benchmarks </benchmarks>` page compares the
# methods with their defaults over several seeds, on the digits and on
# larger image sets.
#
# What a fitted estimator offers
# ------------------------------
# ``labels_`` and ``predict`` as in k-means; ``transform`` gives the learned
# embedding (10 dimensions here) and ``predict_proba`` soft assignments.
dec = models["DEC"]
print("embedding:", dec.transform(X).shape)
print("soft assignments of the first sample:", np.round(dec.predict_proba(X[:1]), 2))
print("predict agrees with labels_:", (dec.predict(X) == dec.labels_).all())

# %%
# The training history
# --------------------
# ``net_`` is the fitted skorch net, whose history records the loss of every
# epoch and, for DEC's clustering stage, each of its terms: the KL divergence
# (``clustering_loss``) and the reconstruction error that
# ``reconstruction_weight`` adds to it. The pretraining history is kept in
# ``pretrain_history_``.
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
axes[0].plot(dec.pretrain_history_[:, "train_loss"])
axes[0].set(
    title="DEC: autoencoder pretraining", xlabel="epoch", ylabel="reconstruction MSE"
)
axes[1].plot(dec.net_.history[:, "clustering_loss"])
axes[1].set(title="DEC: clustering stage", xlabel="epoch", ylabel="KL(P || Q)")
fig.tight_layout()

# %%
# The clusters
# ------------
# A few digits from each DEC cluster: most clusters gather one digit.
fig, axes = plt.subplots(10, 8, figsize=(5, 6.5))
for cluster in range(10):
    members = np.flatnonzero(dec.labels_ == cluster)[:8]
    for col in range(8):
        ax = axes[cluster, col]
        ax.set_axis_off()
        if col < len(members):
            ax.imshow(X[members[col]].reshape(8, 8), cmap="gray_r")
fig.suptitle("Eight members of each DEC cluster (one row per cluster)")
plt.show()
