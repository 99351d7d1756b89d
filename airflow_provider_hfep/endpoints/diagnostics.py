"""
Why did it fail? The endpoint's own log and replicas, read when a wait ends badly, made into one line.

A failed deployment's ``status.message`` is often a few words; its log says what happened (the
container's error, its exit code). :func:`explain` keeps what a person needs, errors first and bounded,
with anything that looks like a token hidden, and names the likely cause in one sentence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from airflow_provider_hfep.endpoints.hardware import CAPACITY_MESSAGE

if TYPE_CHECKING:
    from airflow_provider_hfep.endpoints.models import InferenceEndpoint, LogLine, Replica

#: log lines a diagnosis shows at most, and characters per line
MAX_LINES = 20
MAX_LINE_LENGTH = 300
_HF_TOKEN = re.compile(r"\bhf_[A-Za-z0-9]{6,}")
# A container printing its environment or its config: ``NAME=value``, ``NAME: value``, ``"NAME": "value"``.
# The value is hidden when the name says credential: TOKEN (not TOKENS: an engine's max_total_tokens is
# worth reading, a tokenizer's name too), SECRET, PASSWORD, KEY as a word of the name (API_KEY, OPENAI_KEY;
# not MONKEY)...
_NAME_AND_SEPARATOR = re.compile(r"""(["']?)\b([A-Za-z_][\w.-]*)\1\s*[=:]\s*["']?""")
_VALUE = re.compile(r"""[^\s"',;}]+""")
_CREDENTIAL_NAME = re.compile(
    r"TOKEN(?![A-Z])|SECRET|PASSWORD|PASSWD|PWD|CREDENTIAL|AUTHORIZATION|COOKIE|(?:^|[_.-])KEY(?:$|[_.-])",
    re.IGNORECASE,
)
# ``Authorization: Bearer x`` and a URL's user:password@ (a database URL in the environment)
_BEARER = re.compile(r"\b(Bearer|Basic)\s+[\w.~+/=-]+", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(\w+://[^\s:/@]+:)[^\s@/]+@")
_ERROR_WORDS = re.compile(r"error|exception|traceback|fatal|exited with code|killed|oom", re.IGNORECASE)
# What a log says -> the likely cause, in the words of someone who has seen it before.
_CAUSES: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"out of memory|\boom\b|exited with code 137|CUDA error: out", re.IGNORECASE),
        "the model does not fit in the instance's memory: choose a larger instance (or quantize)",
    ),
    (
        re.compile(
            r"gated|401 Client Error|403 Client Error|not authorized to access|access to model", re.IGNORECASE
        ),
        "the model repository is gated or private: the endpoint needs a token with access to it",
    ),
    (
        CAPACITY_MESSAGE,
        "the cloud has no capacity for this instance now: try another region or instance type",
    ),
    (
        re.compile(r"ImagePullBackOff|manifest unknown|pull access denied|failed to pull", re.IGNORECASE),
        "the container image cannot be pulled: check its URL and registry credentials",
    ),
    (
        re.compile(r"not supported|unsupported architecture|no such task|KeyError: '\w+'", re.IGNORECASE),
        "the engine does not support this model or task: pick another image or task",
    ),
)


@dataclass(frozen=True)
class Diagnosis:
    """
    What the endpoint's log and replicas tell about a wait that ended badly.

    :param cause: the likely cause in one sentence.
    :param lines: the log lines worth reading, errors first, bounded, tokens hidden.
    :param replicas: each replica's state, one line each.
    :param unavailable: what could not be read (the logs or replicas of an endpoint already gone...).
    """

    cause: str
    lines: tuple[str, ...] = ()
    replicas: tuple[str, ...] = ()
    unavailable: tuple[str, ...] = field(default=())

    def report(self) -> list[str]:
        """Return the lines for a task log: the cause, the replicas, then the log lines."""
        out = [f"Likely cause: {self.cause}"]
        out += [f"Replica {replica}" for replica in self.replicas]
        out += [f"Log: {line}" for line in self.lines]
        out += [f"Not available: {what}" for what in self.unavailable]
        return out


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """
    Hide ``secrets`` (the token, known secret values) and anything that looks like a credential.

    That is a Hugging Face token, a ``Bearer``/``Basic`` credential, a URL's password, and the value
    of any ``NAME=value``, ``NAME: value`` or ``"NAME": "value"`` whose name says credential (``HF_TOKEN``,
    ``*SECRET*``, ``*PASSWORD*``, ``*_KEY``...). The service never returns secret values: a log line is
    where the provider could meet one it was not given, and a pattern cannot know every name, so what
    the caller knows (the token, the secrets it sent) is passed in ``secrets``.
    """
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    text = _BEARER.sub(r"\1 ***", text)
    text = _hide_credential_values(text)
    text = _URL_PASSWORD.sub(r"\1***@", text)
    return _HF_TOKEN.sub("hf_***", text)


def _hide_credential_values(text: str) -> str:
    """Replace the value after each credential-named ``NAME=``/``NAME:`` (names may follow names)."""
    shown, position = [], 0
    for match in _NAME_AND_SEPARATOR.finditer(text):
        if match.start() < position or not _CREDENTIAL_NAME.search(match.group(2)):
            continue
        value = _VALUE.match(text, match.end())
        if value is None:
            continue
        shown += [text[position : match.end()], "***"]
        position = value.end()
    return "".join([*shown, text[position:]])


def _is_error(line: LogLine) -> bool:
    return (line.level or "").lower() in ("error", "fatal", "critical") or bool(
        _ERROR_WORDS.search(line.message)
    )


def explain(
    endpoint: InferenceEndpoint | None,
    logs: list[LogLine],
    replicas: list[Replica],
    *,
    secrets: Iterable[str] = (),
    health_failing: bool = False,
    unavailable: Iterable[str] = (),
) -> Diagnosis:
    """
    Name the likely cause of a failed, stuck or unhealthy deployment from its log and replicas.

    :param endpoint: the endpoint as last read, if it could be.
    :param logs: its log lines, oldest first.
    :param replicas: its replicas.
    :param secrets: values never to show (the connection's token...).
    :param health_failing: it runs but its health route never answered 200.
    :param unavailable: what could not be read, said in the report.
    """
    secrets = tuple(secrets)
    errors = [line for line in logs if _is_error(line)]
    others = [line for line in logs if not _is_error(line)]
    chosen = errors + others[-(MAX_LINES - len(errors)) :] if len(errors) < MAX_LINES else errors[-MAX_LINES:]
    lines = tuple(redact(str(line), secrets)[:MAX_LINE_LENGTH] for line in chosen)
    cause = None
    for pattern, meaning in _CAUSES:
        haystack = [line.message for line in errors] + ([endpoint.message] if endpoint else [])
        if any(pattern.search(text) for text in haystack):
            cause = meaning
            break
    exit_codes = sorted({r.exit_code for r in replicas if r.exit_code is not None})
    if cause is None and health_failing:
        cause = (
            "the container runs but its health route never answered 200: check the image's healthRoute "
            "and port, and the container's log for a crash at start"
        )
    if cause is None and errors:
        cause = f"the container reported: {redact(errors[0].message, secrets)[:200]}"
    if cause is None and exit_codes:
        cause = f"the container exited with code {', '.join(map(str, exit_codes))}"
    running = endpoint is not None and str(endpoint.status) == "running"
    if cause is None and running:  # its status message ("Endpoint is ready") explains nothing then
        cause = (
            "it runs and its log shows no error: the requests themselves may be what fails (check the "
            "inputs and parameters against what the model takes)"
        )
    if cause is None and endpoint is not None and endpoint.message:
        cause = f"the service says: {redact(endpoint.message, secrets)[:200]}"
    return Diagnosis(
        cause=cause or "nothing in the endpoint's log or replicas explains it",
        lines=lines,
        replicas=tuple(redact(str(r), secrets) for r in replicas),
        unavailable=tuple(unavailable),
    )
