"""
============================================
DEC: soft assignments and cluster prototypes
============================================

:class:`~skdeepcluster.DEC` assigns each sample to each cluster with a
probability (a Student's t kernel around the centres in the embedding space,
``predict_proba``), and trains so that these assignments become confident.
This example looks at those probabilities, and at what each cluster
represents:

* the average image of each cluster and its most confident members;
* the centres themselves, decoded back to images with ``inverse_transform``:
  with its default reconstruction term DEC trains its decoder together with
  the encoder and keeps it, as :class:`~skdeepcluster.DCN` does.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np

from skdeepcluster import DEC
from skdeepcluster.datasets import load_digits
from skdeepcluster.metrics import clustering_accuracy

X, y = load_digits(return_X_y=True)

# %%
# Fit DEC, and DEC stopped before its clustering stage
# ----------------------------------------------------
# With ``clustering_epochs=0``, DEC stops right after placing its centres at
# the means of its initial partition of the pretrained embedding. With the
# same ``random_state`` the pretraining is identical, so comparing the two
# models shows what the clustering stage changed: its first
# ``initial_partition_epochs`` epochs (here 20) fit Q to the initial
# partition, the rest self-train on the sharpened target. A small network
# and short schedules keep this example fast on a CPU; a larger clustering
# learning rate than the default (``1e-4``) lets the assignments move
# visibly within them.
params = dict(n_clusters=10, hidden_dims=(128, 64), pretrain_epochs=50, random_state=0)
dec_init = DEC(clustering_epochs=0, **params).fit(X)
dec = DEC(
    clustering_epochs=40, initial_partition_epochs=20, clustering_lr=1e-3, **params
).fit(X)
for name, model in [("at the start", dec_init), ("after training", dec)]:
    print(f"{name:<20} accuracy={clustering_accuracy(y, model.labels_):.3f}")
print(f"clustering epochs run: {dec.n_iter_}")

# %%
# Soft assignments sharpen during training
# ----------------------------------------
# ``predict_proba`` returns DEC's soft assignments Q; each row sums to one.
# The histogram of each sample's largest probability shows how training
# towards the initial partition and then the sharpened target P made the
# assignments more confident.
proba_init = dec_init.predict_proba(X)
proba = dec.predict_proba(X)
print("rows sum to one:", np.allclose(proba.sum(axis=1), 1))

fig, ax = plt.subplots(figsize=(6, 3.5))
# Over the range the largest probabilities take, well below 1 (see below).
bins = np.linspace(0, proba.max(), 41)
ax.hist(proba_init.max(axis=1), bins=bins, alpha=0.6, label="at the start")
ax.hist(proba.max(axis=1), bins=bins, alpha=0.6, label="after training")
ax.set(
    xlabel="largest soft assignment of a sample",
    ylabel="number of samples",
    title="DEC: confidence of the soft assignments",
)
ax.legend()
fig.tight_layout()

# %%
# The soft assignments of a few samples
# -------------------------------------
# Each row is one digit, each column a cluster; the digits are picked from
# the least to the most confident. Confident digits give one cluster their
# largest share, around a third, ambiguous ones spread theirs more evenly.
# Even after training Q stays flat: on the unit-length embedding every
# centre is near every sample on the scale of the kernel, whose heavy
# tails (``alpha=0.1``, see DEC's ``alpha``) leave no probability near
# zero. What matters for the labels is which cluster gets the largest share.
rows = np.argsort(proba.max(axis=1))[:: len(X) // 12][:12]
# Axes placed by hand (in inches) so that each digit sits beside its row.
width, height, row = 7.5, 5.4, 0.36
fig = plt.figure(figsize=(width, height))
ax_img = fig.add_axes([0.3 / width, 0.6 / height, row / width, 12 * row / height])
ax_p = fig.add_axes([0.9 / width, 0.6 / height, 5.2 / width, 12 * row / height])
ax_bar = fig.add_axes([6.3 / width, 0.6 / height, 0.2 / width, 12 * row / height])
strip = np.vstack([X[i].reshape(8, 8) for i in rows])
ax_img.imshow(strip, cmap="gray_r", aspect="auto")
ax_img.set_axis_off()
image = ax_p.imshow(proba[rows], cmap="viridis", vmin=0, aspect="auto")
ax_p.set(
    xlabel="cluster",
    yticks=[],
    xticks=range(proba.shape[1]),
    title="predict_proba of twelve digits",
)
fig.colorbar(image, cax=ax_bar, label="probability")

# %%
# What each DEC cluster represents
# --------------------------------
# Top row: the average image of the cluster's members. Below: the five
# samples with the largest probability of belonging to the cluster.
n_clusters = proba.shape[1]
prototypes = np.array([X[dec.labels_ == k].mean(axis=0) for k in range(n_clusters)])
fig, axes = plt.subplots(6, n_clusters, figsize=(n_clusters * 0.9, 6))
for k in range(n_clusters):
    axes[0, k].imshow(prototypes[k].reshape(8, 8), cmap="gray_r")
    axes[0, k].set_title(f"{k}", fontsize=9)
    confident = np.argsort(-proba[:, k])[:5]
    for row, i in enumerate(confident, start=1):
        axes[row, k].imshow(X[i].reshape(8, 8), cmap="gray_r")
for ax in axes.flat:
    ax.set_axis_off()
fig.suptitle("DEC clusters: mean of the members (top), most confident members")
fig.tight_layout()

# %%
# Decoded centres
# ---------------
# DEC keeps the decoder its reconstruction term trained with the encoder, so
# ``inverse_transform(cluster_centers_)`` decodes each centre of the
# embedding space into an 8x8 image: the prototype the network has learned
# for that cluster (``reconstruction_weight=0``, the paper's DEC, drops the
# decoder and has no ``inverse_transform``).
decoded = dec.inverse_transform(dec.cluster_centers_)
fig, axes = plt.subplots(1, len(decoded), figsize=(len(decoded) * 0.9, 1.4))
for k, ax in enumerate(axes):
    ax.imshow(decoded[k].reshape(8, 8), cmap="gray_r")
    ax.set_title(f"{k}", fontsize=9)
    ax.set_axis_off()
fig.suptitle("DEC: decoded cluster centres")
fig.tight_layout()
plt.show()
