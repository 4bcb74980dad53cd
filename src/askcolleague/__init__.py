"""askcolleague: cited answers over company knowledge, and the people to ask next."""
from ._offline import apply_env as _apply_env

_apply_env()

__version__ = "0.1.0"
