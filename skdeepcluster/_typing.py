"""Type aliases shared by the signatures of the public API.

They are for readers and type checkers only: parameters are validated at
``fit`` by the estimators' ``_parameter_constraints``, and the documentation
shows the types written in the numpydoc docstrings, not these hints
(``autodoc_typehints = "none"`` in ``doc/conf.py``).
"""

from collections.abc import Callable
from typing import Literal, TypeAlias

import joblib
import numpy as np
import scipy.sparse as sp
import torch
from numpy.typing import ArrayLike
from skorch.callbacks import Callback

#: ``X`` of ``fit`` and the inference methods: array-like or SciPy sparse.
MatrixLike: TypeAlias = ArrayLike | sp.spmatrix | sp.sparray

#: ``hidden_dims``: the widths of the hidden layers.
HiddenDims: TypeAlias = tuple[int, ...] | list[int]

#: ``input_shape``: ``(channels, height, width)`` of one sample, or None.
InputShape: TypeAlias = tuple[int, int, int] | list[int] | None

#: ``device``: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"auto"``, ...
Device: TypeAlias = str | torch.device | None

#: ``random_state``, as :func:`sklearn.utils.check_random_state` accepts it.
RandomStateLike: TypeAlias = int | np.random.RandomState | None

#: ``callbacks``: skorch callbacks or ``(name, callback)`` pairs.
Callbacks: TypeAlias = list[Callback | tuple[str, Callback]] | None

#: ``optimizer``: a :class:`torch.optim.Optimizer` class (or any callable
#: building one from the parameters and ``lr``).
OptimizerFactory: TypeAlias = Callable[..., torch.optim.Optimizer]

#: ``memory``: a cache directory or a :class:`joblib.Memory`.
MemoryLike: TypeAlias = str | joblib.Memory | None

#: ``n_init`` and the epoch counts that can be ``"auto"``.
IntOrAuto: TypeAlias = int | Literal["auto"]

#: ``smoothing_weight``.
FloatOrAuto: TypeAlias = float | Literal["auto"]
