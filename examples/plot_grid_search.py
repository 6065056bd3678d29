"""
======================================================
Choosing hyper-parameters with Pipeline + GridSearchCV
======================================================

Deep clustering estimators are ordinary scikit-learn estimators, so they
plug into a :class:`~sklearn.pipeline.Pipeline` and
:class:`~sklearn.model_selection.GridSearchCV`.

Clustering is unsupervised, but when some labelled data is available the
hyper-parameters can be chosen by how well the clusters match the classes on
held-out data. The scorers of :mod:`skdeepcluster.metrics` do that: the
estimator is fitted on the training folds **without** their labels, and the
scorer compares ``predict`` on the held-out fold with its labels, under the
best one-to-one matching of clusters to classes.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from skdeepcluster import AutoencoderKMeans
from skdeepcluster.datasets import load_digits
from skdeepcluster.metrics import clustering_accuracy_scorer, nmi_scorer

X, y = load_digits(return_X_y=True)

# %%
# The pipeline and the grid
# -------------------------
# The scaler is part of the model, as it would be in a supervised pipeline.
# The grid compares embedding sizes and network widths; pipeline parameters
# are addressed as ``<step name>__<parameter>``.
pipe = make_pipeline(
    MinMaxScaler(),
    AutoencoderKMeans(n_clusters=10, pretrain_epochs=30, random_state=0),
)
param_grid = {
    "autoencoderkmeans__embedding_dim": [2, 10],
    "autoencoderkmeans__hidden_dims": [(64,), (128, 64)],
}
search = GridSearchCV(
    pipe,
    param_grid,
    scoring={"accuracy": clustering_accuracy_scorer, "nmi": nmi_scorer},
    refit="accuracy",
    cv=StratifiedKFold(n_splits=3, shuffle=True, random_state=0),
)
search.fit(X, y)  # fit ignores y; only the scorers compare with it
print("best parameters:", search.best_params_)
print(f"best held-out accuracy: {search.best_score_:.3f}")

# %%
# The results
# -----------
# ``cv_results_`` holds both scores for every combination.
results = search.cv_results_
print(f"{'embedding_dim':>13} {'hidden_dims':>12} {'accuracy':>14} {'NMI':>6}")
for i, params in enumerate(results["params"]):
    print(
        f"{params['autoencoderkmeans__embedding_dim']:>13} "
        f"{str(params['autoencoderkmeans__hidden_dims']):>12} "
        f"{results['mean_test_accuracy'][i]:>8.3f} "
        f"± {results['std_test_accuracy'][i]:.3f} "
        f"{results['mean_test_nmi'][i]:>6.3f}"
    )

# %%
labels = [
    f"dim {p['autoencoderkmeans__embedding_dim']}\n"
    f"{p['autoencoderkmeans__hidden_dims']}"
    for p in results["params"]
]
position = np.arange(len(labels))
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.bar(
    position - 0.2,
    results["mean_test_accuracy"],
    0.4,
    yerr=results["std_test_accuracy"],
    label="accuracy",
)
ax.bar(
    position + 0.2,
    results["mean_test_nmi"],
    0.4,
    yerr=results["std_test_nmi"],
    label="NMI",
)
ax.set_xticks(position, labels)
ax.set(
    ylim=(0, 1),
    ylabel="held-out score (3 folds)",
    title="AutoencoderKMeans: embedding size and hidden widths",
)
ax.legend(loc="lower right")
fig.tight_layout()

# %%
# The refitted model
# ------------------
# With ``refit="accuracy"``, the best combination is refitted on all the data
# and the search itself can be used as a clusterer.
print("clusters of the first ten digits:", search.predict(X[:10]))
print("true digits:                     ", y[:10])
plt.show()
