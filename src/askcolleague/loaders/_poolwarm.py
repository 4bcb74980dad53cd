"""Imported once by the parse pool's forkserver, so that every worker forks with the parsers loaded
(unstructured's partitioners take seconds to import; spaCy is patched to its offline model first)."""
from .._offline import patch_unstructured

patch_unstructured()

import unstructured.partition.docx  # noqa: E402,F401
import unstructured.partition.html  # noqa: E402,F401
import unstructured.partition.md  # noqa: E402,F401
import unstructured.partition.pptx  # noqa: E402,F401
import unstructured.partition.rst  # noqa: E402,F401
import unstructured.partition.text  # noqa: E402,F401  (pyflakes: imported for its side effect)

from . import documents, office, sheets  # noqa: E402,F401
