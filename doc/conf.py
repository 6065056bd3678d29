"""Sphinx configuration of the skdeepcluster documentation.

Build (warnings are errors), from the repository root::

    python -m sphinx -W --keep-going -b html doc doc/_build/html

Environment variables:

``SKDC_DOCS_ONLINE=1``
    Link to the scikit-learn, PyTorch, skorch and NumPy documentation through
    intersphinx. Off by default because fetching the inventories needs the
    network, and a failed fetch is a warning, hence an error under ``-W``.
``SKDC_DOCS_GALLERY=pattern``
    Only execute the gallery examples whose path matches this regular
    expression (default: every ``plot_*.py``). The others are still rendered,
    without their output.
"""

import inspect
import os
import re
from pathlib import Path

import skdeepcluster
import skdeepcluster.callbacks
import skdeepcluster.datasets
import skdeepcluster.metrics
import skdeepcluster.nn

DOC_DIR = Path(__file__).resolve().parent
GENERATED = DOC_DIR / "generated"

# -- Project ------------------------------------------------------------------

project = "skdeepcluster"
author = "skdeepcluster developers"
copyright = "skdeepcluster developers"  # noqa: A001 (Sphinx's name)
release = skdeepcluster.__version__
version = ".".join(release.split(".")[:2])

# -- General ------------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

exclude_patterns = ["_build", "**.ipynb_checkpoints", "auto_examples/*.ipynb"]
templates_path = ["_templates"]
default_role = "literal"

# The API pages are written below from the packages' ``__all__`` (the
# autosummary stubs too), so autosummary must not regenerate them.
autosummary_generate = False
# set_fit_request and set_score_request are made by scikit-learn's metadata
# routing (fit and score take sample_weight); their docstrings point to
# scikit-learn's glossary and are documented there.
autodoc_default_options = {
    "member-order": "groupwise",
    "exclude-members": "set_fit_request,set_score_request",
}
# Signatures show ``n_clusters=8, *, hidden_dims=...`` as written.
autodoc_preserve_defaults = True
# The code carries type hints for type checkers and editors; the documented
# types are the numpydoc ones of the docstrings ("int or 'auto'"), so the
# hints are left out of the rendered signatures and descriptions.
autodoc_typehints = "none"

# numpydoc renders the Parameters/Attributes tables; the method list comes
# from autodoc in the stub pages, not from numpydoc's member tables.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

# -- Cross-references to other projects ----------------------------------------

# Inventories are fetched at build time, which needs the network; see the
# module docstring. Offline, references to these projects render as plain
# code instead of links, with no warning.
if os.environ.get("SKDC_DOCS_ONLINE") == "1":
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable/", None),
        "scipy": ("https://docs.scipy.org/doc/scipy/", None),
        "sklearn": ("https://scikit-learn.org/stable/", None),
        "torch": ("https://docs.pytorch.org/docs/stable/", None),
        "skorch": ("https://skorch.readthedocs.io/en/stable/", None),
        "joblib": ("https://joblib.readthedocs.io/en/stable/", None),
    }
else:
    intersphinx_mapping = {}

# -- HTML ---------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"skdeepcluster {release}"
html_theme_options = {
    "github_url": "https://github.com/skdeepcluster/skdeepcluster",
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path = []
html_show_sourcelink = False

# -- Gallery ------------------------------------------------------------------

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    # Only plot_*.py files are executed; demo.py is the `make demo` script,
    # not a gallery example.
    "filename_pattern": os.environ.get("SKDC_DOCS_GALLERY", r"/plot_"),
    "ignore_pattern": r"demo\.py|__init__\.py",
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("skdeepcluster",),
    "backreferences_dir": "generated/backreferences",
    # An example that raises fails the build instead of showing a traceback.
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
}

# -- API reference, generated from __all__ ---------------------------------------

# Every public name of these modules gets a page, so whichever estimators the
# package exports are documented without editing this file.
API_SECTIONS = [
    (
        "Estimators",
        skdeepcluster,
        "Deep clustering estimators. Each is a scikit-learn clusterer and "
        "transformer (``fit``, ``predict``, ``fit_predict``, ``transform``).",
    ),
    (
        "Schedule callbacks",
        skdeepcluster.callbacks,
        "The methods' training schedules as skorch callbacks. The estimators "
        "install them by name; pass one under the same name in ``callbacks`` "
        "to replace the default (see :ref:`training_control`).",
    ),
    ("Metrics", skdeepcluster.metrics, None),
    ("Datasets", skdeepcluster.datasets, None),
    ("Network building blocks", skdeepcluster.nn, None),
]

CLASS_TEMPLATE = """\
{title}
{underline}

.. currentmodule:: {module}

.. autoclass:: {name}
   :members:
{inherited}
.. minigallery:: {module}.{name}
   :add-heading: Gallery examples using ``{name}``
"""

OTHER_TEMPLATE = """\
{title}
{underline}

.. currentmodule:: {module}

.. {directive}:: {name}

.. minigallery:: {module}.{name}
   :add-heading: Gallery examples using ``{name}``
"""


def _public_names(module):
    return [name for name in module.__all__ if not name.startswith("_")]


def _stub(module, name):
    """reST of the page of ``module.name``."""
    obj = getattr(module, name)
    title = f"{module.__name__}.{name}"
    fields = dict(
        title=title, underline="=" * len(title), module=module.__name__, name=name
    )
    if inspect.isclass(obj):
        import torch
        from skorch.callbacks import Callback

        # Estimators show the methods they get from the shared base class
        # (fit, predict, transform, ...); torch modules would list the dozens
        # of torch.nn.Module methods, and callbacks skorch's empty hooks, so
        # they show only their own.
        if issubclass(obj, (torch.nn.Module, Callback)):
            inherited = ""
        else:
            inherited = "   :inherited-members:\n"
        return CLASS_TEMPLATE.format(inherited=inherited, **fields)
    directive = "autofunction" if inspect.isfunction(obj) else "autodata"
    return OTHER_TEMPLATE.format(directive=directive, **fields)


def _write_if_changed(path, text):
    # Rewriting an unchanged file would make Sphinx re-read every page.
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def write_api_pages():
    """Write ``generated/api_sections.inc`` and one stub page per name."""
    GENERATED.mkdir(exist_ok=True)
    lines = []
    for heading, module, intro in API_SECTIONS:
        lines += [
            heading,
            "-" * len(heading),
            "",
            f".. automodule:: {module.__name__}",
            "   :no-members:",
            "",
        ]
        if intro:
            lines += [intro, ""]
        lines += [
            f".. currentmodule:: {module.__name__}",
            "",
            ".. autosummary::",
            "   :toctree: generated/",
            "   :nosignatures:",
            "",
        ]
        for name in _public_names(module):
            lines.append(f"   {name}")
            page = GENERATED / f"{module.__name__}.{name}.rst"
            _write_if_changed(page, _stub(module, name))
        lines.append("")
    _write_if_changed(GENERATED / "api_sections.inc", "\n".join(lines))


write_api_pages()


# sklearn's inherited docstrings point at labels of scikit-learn's own user
# guide (":ref:`User Guide <...>`"), which do not exist here. Replace them by
# plain text so that the build stays warning-free.
_SKLEARN_REF = re.compile(r":ref:`([^`<]*?)\s*<[^`>]*>`|:ref:`([^`]*)`")


def _ref_text(match):
    text = (match.group(1) or match.group(2)).strip()
    # A bare reference to one of scikit-learn's gallery examples.
    return "scikit-learn's example" if text.startswith("sphx_glr_") else text


# "of shape (n_features_in_,)": in reST a word ending in "_" is a link to a
# target of that name, which does not exist. Quote it as code.
_TRAILING_UNDERSCORE = re.compile(r"\((\w+_),\)")


def _fix_docstring(app, what, name, obj, options, lines):
    module = getattr(obj, "__module__", "") or ""
    for i, line in enumerate(lines):
        line = _TRAILING_UNDERSCORE.sub(r"(``\1``,)", line)
        if not module.startswith("skdeepcluster"):
            line = _SKLEARN_REF.sub(_ref_text, line)
        lines[i] = line


def setup(app):
    # numpydoc also listens to this event; a lower priority runs first, on the
    # raw docstring lines.
    app.connect("autodoc-process-docstring", _fix_docstring, priority=100)
