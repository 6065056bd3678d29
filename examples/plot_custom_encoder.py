"""
=============================
Using your own encoder module
=============================

The autoencoder-based estimators build a fully connected network by default
(or a convolutional one when ``input_shape`` is given). Any
:class:`torch.nn.Module` can replace it: pass an ``encoder`` and a
``decoder``. The encoder maps a batch of samples to a batch of embeddings of
shape ``(batch, embedding)``; the decoder maps embeddings back to samples.

Here a small convolutional encoder, written for the 8x8 digits, is compared
with the default fully connected one in
:class:`~skdeepcluster.AutoencoderKMeans`.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from skdeepcluster import AutoencoderKMeans
from skdeepcluster.datasets import load_digits
from skdeepcluster.metrics import clustering_accuracy

X, y = load_digits(return_X_y=True)

# %%
# The modules
# -----------
# The estimator feeds the network the rows of ``X`` as given (flat, 64
# features), so the encoder reshapes them to ``(1, 8, 8)`` images itself.
# (Alternatively, pass ``input_shape=(1, 8, 8)`` and the estimator reshapes
# the batches before they reach the encoder; the decoder must then return
# images of that shape, e.g. ending with ``nn.Unflatten(1, (1, 8, 8))``.)
# The decoder ends with a sigmoid
# because the pixels lie in [0, 1].
embedding_dim = 10

encoder = nn.Sequential(
    nn.Unflatten(1, (1, 8, 8)),
    nn.Conv2d(1, 16, kernel_size=3, padding=1),  # 16 x 8 x 8
    nn.ReLU(),
    nn.MaxPool2d(2),  # 16 x 4 x 4
    nn.Conv2d(16, 32, kernel_size=3, padding=1),  # 32 x 4 x 4
    nn.ReLU(),
    nn.MaxPool2d(2),  # 32 x 2 x 2
    nn.Flatten(),
    nn.Linear(32 * 2 * 2, embedding_dim),
)
decoder = nn.Sequential(
    nn.Linear(embedding_dim, 128),
    nn.ReLU(),
    nn.Linear(128, 64),
    nn.Sigmoid(),
)
print(encoder(torch.zeros(2, 64)).shape, decoder(torch.zeros(2, embedding_dim)).shape)

# %%
# Fit with the custom modules and with the default network
# --------------------------------------------------------
# The modules are copied at ``fit``, so the instances above stay untouched
# and the estimator can be cloned and refitted from the same weights.
custom = AutoencoderKMeans(
    n_clusters=10, encoder=encoder, decoder=decoder, pretrain_epochs=50, random_state=0
).fit(X)
default = AutoencoderKMeans(
    n_clusters=10,
    hidden_dims=(128, 64),
    embedding_dim=embedding_dim,
    pretrain_epochs=50,
    random_state=0,
).fit(X)
for name, model in [("custom convolutional", custom), ("default MLP", default)]:
    print(
        f"{name:<24} accuracy={clustering_accuracy(y, model.labels_):.3f} "
        f"final reconstruction MSE={model.net_.history[-1, 'train_loss']:.4f}"
    )

# %%
# The fitted network is in ``net_.module_``: a trained copy of your modules.
# The pixels here lie in [0, 1], so ``normalize_embedding="auto"`` (the
# default of :class:`~skdeepcluster.AutoencoderKMeans`) appends
# :class:`~skdeepcluster.nn.L2Normalize` to the encoder and k-means clusters
# directions; pass ``normalize_embedding=False`` to cluster your encoder's
# output as it is.
print(custom.net_.module_.encoder)

# %%
# Reconstructions and cluster prototypes
# --------------------------------------
# ``inverse_transform`` runs the trained decoder: on ``transform(X)`` it gives
# reconstructions, on ``cluster_centers_`` a prototype image per cluster.
digits = X[:10]
rows = {
    "input": digits,
    "custom": custom.inverse_transform(custom.transform(digits)),
    "default": default.inverse_transform(default.transform(digits)),
    "custom: centres": custom.inverse_transform(custom.cluster_centers_),
}
fig, axes = plt.subplots(len(rows), 10, figsize=(8, 0.9 * len(rows) + 0.6))
for r, (name, images) in enumerate(rows.items()):
    for c in range(10):
        image = np.asarray(images[c]).reshape(8, 8)
        axes[r, c].imshow(image, cmap="gray_r", vmin=0, vmax=1)
        axes[r, c].set_axis_off()
    axes[r, 0].set_title(name, fontsize=9, loc="left")
fig.suptitle("Reconstructions of ten digits, and decoded cluster centres")
fig.tight_layout()
plt.show()
