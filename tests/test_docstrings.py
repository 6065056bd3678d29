"""Docstrings of the public API: complete, consistent with the signatures, runnable.

Every public name (the ``__all__`` of the package and of its public
submodules) must have a numpydoc docstring whose Parameters section matches
its signature, and classes and functions must carry an Examples section that
runs. Public methods defined in this package (``fit``, ``predict``, ...) are
checked against their signatures too. The API reference of the documentation
is generated from these docstrings.
"""

import doctest
import inspect
import re

import pytest

import skdeepcluster
import skdeepcluster.callbacks
import skdeepcluster.datasets
import skdeepcluster.metrics
import skdeepcluster.nn

numpydoc_validate = pytest.importorskip("numpydoc.validate")

MODULES = [
    skdeepcluster,
    skdeepcluster.callbacks,
    skdeepcluster.metrics,
    skdeepcluster.datasets,
    skdeepcluster.nn,
]

# numpydoc error codes that make a docstring wrong rather than unidiomatic:
# GL08 no docstring; PR01 a parameter of the signature is not documented;
# PR02 a documented parameter is not in the signature; PR03 parameters
# documented in a different order; PR10 "name:type" without a space, which
# numpydoc reads as a parameter named "name:type".
SIGNATURE_CODES = {"GL08", "PR01", "PR02", "PR03", "PR10"}

# ``forward`` of the torch modules follows PyTorch's convention: the class
# docstring describes what the module computes, and nobody calls ``forward``
# directly.
# Likewise the skorch callback hooks (``on_train_begin``, ``on_epoch_end``,
# ...): skorch calls them, and the class docstring says what the callback
# does at each.
UNDOCUMENTED_METHODS = {
    "forward",
    "initialize",
    "on_train_begin",
    "on_train_end",
    "on_epoch_begin",
    "on_epoch_end",
    "on_batch_begin",
    "on_batch_end",
    "on_grad_computed",
}


def _public_objects():
    for module in MODULES:
        for name in module.__all__:
            if not name.startswith("_"):
                yield f"{module.__name__}.{name}", module, getattr(module, name)


PUBLIC = list(_public_objects())
CALLABLES = [
    (path, obj)
    for path, _, obj in PUBLIC
    if inspect.isclass(obj) or inspect.isfunction(obj)
]
DATA = [
    (path, module, path.rsplit(".", 1)[1])
    for path, module, obj in PUBLIC
    if not (inspect.isclass(obj) or inspect.isfunction(obj))
]


def _own_public_methods():
    """(path, import path) of public methods defined in this package's classes."""
    for path, obj in CALLABLES:
        if not inspect.isclass(obj):
            continue
        seen = set()
        for klass in obj.__mro__:
            if not klass.__module__.startswith("skdeepcluster"):
                continue
            for name, member in vars(klass).items():
                if (
                    name.startswith("_")
                    or name in seen
                    or name in UNDOCUMENTED_METHODS
                    or not callable(member)
                ):
                    continue
                seen.add(name)
                yield f"{path}.{name}"


METHODS = sorted(set(_own_public_methods()))


def _errors(import_path, codes):
    result = numpydoc_validate.validate(import_path)
    return [f"{code}: {message}" for code, message in result["errors"] if code in codes]


def test_every_public_name_is_covered():
    # Guard against an empty parametrisation silently testing nothing, and
    # against a new estimator that is not exported where the docs look.
    names = {path.rsplit(".", 1)[1] for path, _ in CALLABLES}
    expected = {"AutoencoderKMeans", "clustering_accuracy", "load_digits", "MLPEncoder"}
    assert expected <= names
    estimators = [
        name
        for name in skdeepcluster.__all__
        if inspect.isclass(getattr(skdeepcluster, name, None))
    ]
    assert estimators, "skdeepcluster.__all__ exports no class"
    assert len(METHODS) >= len(estimators) * 4


def _inherits_foreign_init(obj):
    """A class whose ``__init__`` comes from another library (e.g. torch).

    Its signature is then that library's generic ``(*args, **kwargs)``, which
    are not parameters of this class to document.
    """
    if not inspect.isclass(obj):
        return False
    owner = next(klass for klass in obj.__mro__ if "__init__" in vars(klass))
    return not owner.__module__.startswith("skdeepcluster")


@pytest.mark.parametrize("path, obj", CALLABLES, ids=[p for p, _ in CALLABLES])
def test_docstring_matches_signature(path, obj):
    codes = (
        SIGNATURE_CODES - {"PR01"} if _inherits_foreign_init(obj) else SIGNATURE_CODES
    )
    errors = _errors(path, codes)
    assert not errors, f"{path}:\n" + "\n".join(errors)


@pytest.mark.parametrize("path, obj", CALLABLES, ids=[p for p, _ in CALLABLES])
def test_docstring_has_examples(path, obj):
    errors = _errors(path, {"EX01"})
    assert not errors, f"{path} has no Examples section"


@pytest.mark.parametrize("path", METHODS)
def test_method_docstring_matches_signature(path):
    errors = _errors(path, SIGNATURE_CODES)
    assert not errors, f"{path}:\n" + "\n".join(errors)


@pytest.mark.parametrize("path, module, name", DATA, ids=[p for p, _, _ in DATA])
def test_public_data_has_doc_comment(path, module, name):
    # Module-level objects such as the scorers cannot carry a docstring;
    # Sphinx documents them from a "#:" comment just above the assignment.
    source = inspect.getsource(module)
    match = re.search(rf"^#:.*\n{re.escape(name)}\s*=", source, flags=re.MULTILINE)
    assert match, f'{path} needs a "#: ..." comment on the line above its assignment'


@pytest.mark.parametrize("path, obj", CALLABLES, ids=[p for p, _ in CALLABLES])
def test_examples_run(path, obj):
    """The Examples section is a doctest that passes (``+SKIP`` lines excepted)."""
    examples = doctest.DocTestParser().get_doctest(
        inspect.getdoc(obj) or "", {}, path, None, 0
    )
    if not any(not ex.options.get(doctest.SKIP) for ex in examples.examples):
        pytest.skip("every example line is marked +SKIP (needs data not shipped)")
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    output = []
    runner.run(examples, out=output.append)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, "".join(output)


def test_shared_parameter_placeholders_are_filled():
    # The estimators' docstrings name the shared parameter entries of
    # skdeepcluster._docstrings with "{key}" lines, which fill_doc replaces.
    from skdeepcluster._docstrings import _PLACEHOLDER

    for path, obj in CALLABLES:
        assert not _PLACEHOLDER.search(obj.__doc__ or ""), path


def test_no_placeholder_is_left_in_the_package():
    # Private building blocks and methods share entries too (a reference, the
    # X of predict); a missing @fill_doc there would show "{key}" verbatim.
    import importlib
    import pkgutil

    from skdeepcluster._docstrings import _PLACEHOLDER

    unfilled = []
    for info in pkgutil.walk_packages(skdeepcluster.__path__, "skdeepcluster."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if getattr(obj, "__module__", None) != module.__name__:
                continue
            members = vars(obj).items() if inspect.isclass(obj) else ()
            for path, member in [(name, obj), *members]:
                if _PLACEHOLDER.search(inspect.getdoc(member) or ""):
                    unfilled.append(f"{info.name}.{name}: {path}")
    assert not unfilled


def test_fill_doc_keeps_other_braces_and_rejects_unknown_keys():
    from skdeepcluster._docstrings import fill_doc

    class Documented:
        """Summary.

        Parameters
        ----------
        X : {array-like, sparse matrix}
            Data.
        {device}
        """

    doc = fill_doc(Documented).__doc__
    assert "X : {array-like, sparse matrix}" in doc
    assert '\n        device : str, torch.device or None, default="cpu"\n' in doc

    class Misspelt:
        """Summary.

        {devise}
        """

    with pytest.raises(KeyError, match="devise"):
        fill_doc(Misspelt)
