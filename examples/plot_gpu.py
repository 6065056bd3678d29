"""
================
Running on a GPU
================

Every estimator has a ``device`` parameter:

* ``"cpu"`` (the default);
* ``"cuda"`` or ``"cuda:N"``: a GPU, and an error if PyTorch sees none;
* ``"auto"``: a CUDA GPU when there is one, else Apple's MPS, else the CPU.

This example uses ``device="auto"``, so it runs anywhere. **When this
documentation was built there may have been no GPU: the timings below are
then those of the CPU.** The same code uses a GPU on a machine with a CUDA
build of PyTorch (see :doc:`/install`).
"""

# %%
import time

import matplotlib.pyplot as plt
import torch

from skdeepcluster import DEC
from skdeepcluster.datasets import load_digits
from skdeepcluster.metrics import clustering_accuracy

X, y = load_digits(return_X_y=True)
print("CUDA available:", torch.cuda.is_available())
if torch.cuda.is_available():
    print("GPU:", torch.cuda.get_device_name(0))

# %%
# Fit with ``device="auto"``
# --------------------------
# The input stays a NumPy array: the estimator moves it to the device, and
# the fitted attributes and predictions come back as NumPy arrays.
model = DEC(
    n_clusters=10,
    hidden_dims=(128, 64),
    pretrain_epochs=50,
    clustering_epochs=20,
    device="auto",
    random_state=0,
)
start = time.perf_counter()
model.fit(X)
seconds = time.perf_counter() - start
print(f"trained on: {model.net_.device}")
print(f"fit time: {seconds:.1f} s")
print(f"accuracy: {clustering_accuracy(y, model.labels_):.3f}")
print("labels_ is a", type(model.labels_).__name__, "on the host")

# %%
# Asking for a GPU that is not there
# ----------------------------------
# ``device="cuda"`` never falls back silently: without a GPU, ``fit`` says so.
if not torch.cuda.is_available():
    try:
        DEC(n_clusters=10, device="cuda").fit(X)
    except ValueError as error:
        print("ValueError:", error)

# %%
# The training curves
# -------------------
# ``pretrain_history_`` and ``net_.history`` are skorch histories, the same on
# every device; the time per epoch is recorded too.
history = model.pretrain_history_
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
axes[0].plot(history[:, "train_loss"])
axes[0].set(xlabel="epoch", ylabel="reconstruction MSE", title="pretraining loss")
axes[1].plot(history[:, "dur"], label="pretraining")
axes[1].plot(model.net_.history[:, "dur"], label="clustering")
axes[1].set(
    xlabel="epoch", ylabel="seconds", title=f"time per epoch on {model.net_.device}"
)
axes[1].legend()
fig.tight_layout()
plt.show()
