"""What the project needs from the Hugging Face Hub beyond its client library: repo-id checks, the
token check before an upload, and one-line errors for what the Hub answers.

Tokens come only from huggingface_hub itself (`hf auth login`, or the HF_TOKEN environment
variable): nothing here takes one as an argument or prints one.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path

from .errors import CremaToolsError, LoadError

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


def check_repo_id(value: str | Path) -> str:
    """`value` as a Hub repo id (owner/name), or a LoadError saying it is neither a folder nor one.

    Called only after `value` was found not to be a local folder, so the message says both.
    """
    text = str(value)
    if not is_repo_id(text):
        raise LoadError(f"{text}: no such folder, and not a Hub repo id of the form owner/name")
    return text


def is_repo_id(value: str | Path) -> bool:
    text = str(value)
    return bool(_REPO_ID.match(text)) and ".." not in text


class HubError(CremaToolsError):
    """The Hub refused or could not be reached: not logged in, no write access, no such repo."""


def require_repo_id(value: str, option: str = "--repo-id") -> str:
    if not is_repo_id(value):
        raise HubError(f"{option} {value!r}: a Hub repo id is ORG/NAME (letters, digits, '-', '_', '.')")
    return value


def require_token() -> None:
    """Uploads need a token from `hf auth login` or HF_TOKEN; this never reads it out, only asks."""
    from huggingface_hub import get_token

    if not get_token():
        raise HubError("not logged in to the Hugging Face Hub: run `hf auth login` or set HF_TOKEN "
                       "(a token with write access to the repository's owner)")


def _network_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [OSError]
    for module in ("httpx2", "httpx"):
        try:
            errors.append(__import__(module).HTTPError)
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


@contextmanager
def hub_errors(what: str):
    """Turn what huggingface_hub raises (HTTP statuses, a Hub out of reach) into one HubError line.

    Messages name the status and the server's reason; they never hold a token (the client sends
    it in a header, and no message here quotes headers).
    """
    from huggingface_hub.errors import HfHubHTTPError

    try:
        yield
    except HfHubHTTPError as e:
        status = getattr(getattr(e, "response", None), "status_code", None)
        reason = {401: "the Hub did not accept the token (run `hf auth login` or set HF_TOKEN)",
                  403: "the token has no write access there",
                  404: "not found, or not visible with this token"}.get(status, f"HTTP {status}")
        detail = (getattr(e, "server_message", None) or str(e).split("\n", 1)[0]).strip()
        raise HubError(f"{what}: {reason}" + (f" ({detail})" if detail else "")) from None
    except _network_errors() as e:
        raise HubError(f"{what}: cannot reach the Hub at {_endpoint()} ({e.__class__.__name__}: "
                       f"{str(e).splitlines()[0] if str(e) else 'no details'})") from None


def _endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def repo_url(repo_id: str, repo_type: str, revision: str | None = None) -> str:
    """The repository's page on the Hub this process talks to (HF_ENDPOINT)."""
    prefix = {"model": "", "dataset": "datasets/", "space": "spaces/"}[repo_type]
    return f"{_endpoint()}/{prefix}{repo_id}" + (f"/tree/{revision}" if revision and revision != "main" else "")
