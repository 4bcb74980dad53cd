"""Every error askcolleague raises, each saying what to do next.

    AskColleagueError                 base; str(e) is one line a user can act on
     ├── ConfigError                  a bad setting or argument
     ├── LoadError                    one source file cannot be read (the file is skipped)
     │    └── MetadataError           its front matter or sidecar cannot be read (not kept from before)
     ├── IndexNotFoundError           no index at the path: run `index build`
     ├── IndexFormatError             a damaged or foreign index folder
     │    └── ModelMismatchError      index built with another model/dimension: `--rebuild`
     ├── IndexLockedError             another build/update holds the index lock
     ├── NothingIndexedError          a build found nothing it could index
     ├── DiskFullError                a build ran out of disk space (partial version removed, previous kept)
     └── LoginError                   a web request from a user who is not (or no longer) in the users file
"""
from __future__ import annotations


class AskColleagueError(Exception):
    """Base class: the message is a single line naming the problem and the fix."""


class ConfigError(AskColleagueError):
    pass


class LoadError(AskColleagueError):
    """Raised by a loader for one file; the builder records it and skips the file."""


class MetadataError(LoadError):
    """A file's own metadata (front matter, sidecar) cannot be read. Its access groups may have
    changed, so the builder does not keep the previously indexed version either."""


class IndexNotFoundError(AskColleagueError):
    pass


class IndexFormatError(AskColleagueError):
    pass


class ModelMismatchError(IndexFormatError):
    pass


class IndexLockedError(AskColleagueError):
    pass


class NothingIndexedError(AskColleagueError):
    pass


class DiskFullError(AskColleagueError):
    """The disk filled up while a build wrote its new version; the message names the space needed."""


class LoginError(AskColleagueError):
    pass
