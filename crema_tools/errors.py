"""The one base class of every error crema-tools raises on purpose.

Each such error carries a one-line message that names the file or argument at fault and what to
do about it; the command lines catch `CremaToolsError`, print that line and exit 2. Anything else
escaping is a bug and keeps its traceback.
"""


class CremaToolsError(Exception):
    """A problem the user can fix: bad input, a missing file, an option that does not apply."""


class LoadError(CremaToolsError, ValueError):
    """A dataset folder or Hub repo that cannot be read as asked: names the folder, config or shard."""


class BuildError(CremaToolsError):
    """A build that cannot go on: reported as one line naming the file or option at fault."""
