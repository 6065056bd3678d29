"""Exceptions raised by the deep clustering estimators."""

__all__ = ["TrainingDivergedError"]


class TrainingDivergedError(FloatingPointError):
    """Training produced a non-finite loss or network weight.

    Raised by ``fit`` as soon as a training loss, or a weight of the network
    at the end of an epoch, is infinite or NaN: the estimator is then left as
    it was before ``fit`` (unfitted, or with its previous fitted state). The
    message names the training stage and epoch. The usual causes are input
    on a large scale and a learning rate too high for it.

    Examples
    --------
    >>> from skdeepcluster.exceptions import TrainingDivergedError
    >>> issubclass(TrainingDivergedError, FloatingPointError)
    True
    """
