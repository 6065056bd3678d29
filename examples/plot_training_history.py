"""
====================================
Watching a fit: the training history
====================================

Every network an estimator trains is a skorch net, and its
:class:`skorch.history.History` is kept after the fit. :class:`~skdeepcluster.DEC`
trains in two stages: the autoencoder's pretraining (``pretrain_history_``)
and the clustering stage (``net_.history``), where the loss is the
Kullback-Leibler divergence to the sharpened target (``clustering_loss``)
plus ``reconstruction_weight`` times the reconstruction error
(``reconstruction_loss``), and ``label_change`` is the fraction of samples
whose cluster changed at each refresh of the target.
"""

# %%
# Fit DEC on the digits
# ---------------------
# Defaults except ``n_clusters``: on 1,797 samples the ``"auto"`` sizes give
# a ``64-256-128-10`` autoencoder trained for at least 2,000 steps.
import matplotlib.pyplot as plt

from skdeepcluster import DEC
from skdeepcluster.datasets import load_digits
from skdeepcluster.metrics import clustering_accuracy

X, y = load_digits(return_X_y=True)
dec = DEC(n_clusters=10, random_state=0).fit(X)
print(f"accuracy {clustering_accuracy(y, dec.labels_):.3f}")

# %%
# Plot both stages
# ----------------
# A history is indexed like ``history[:, "train_loss"]``: one value per epoch.
pretraining = dec.pretrain_history_
clustering = dec.net_.history

fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
axes[0].plot(pretraining[:, "epoch"], pretraining[:, "train_loss"])
axes[0].set(title="pretraining", xlabel="epoch", ylabel="reconstruction loss")
axes[0].set_yscale("log")
axes[1].plot(clustering[:, "epoch"], clustering[:, "clustering_loss"])
axes[1].set(title="clustering", xlabel="epoch", ylabel="KL(P || Q)")
refreshes = [row for row in clustering if "label_change" in row]
axes[2].plot(
    [row["epoch"] for row in refreshes], [row["label_change"] for row in refreshes]
)
axes[2].axhline(dec.tol, color="grey", linestyle="--", label="tol (stop below)")
axes[2].set(title="clustering", xlabel="epoch", ylabel="fraction of labels changed")
axes[2].legend()
fig.tight_layout()
plt.show()
