"""One detector for secrets written into an item. Everything in an item reaches the execution input
and the Step Functions history, which anyone who may read executions can see, so a secret must stay
in Secrets Manager or SSM Parameter Store and be read by the job through its role.

Two rules, applied to the whole item (overrides included): a variable whose *name* says it holds a
secret (in any Environment, HyperParameters or StaticHyperParameters map), and any string whose
*value* looks like a credential, wherever it is (container arguments and entry points too).
Messages name the field and what it looks like, never the value.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from .problems import Problem, join

# Maps whose keys are variable names a job sees.
VARIABLE_MAPS = {"Environment", "HyperParameters", "StaticHyperParameters"}

# A name (split into words at _ - . and camelCase) holds a secret when it ends in one of these words or
# pairs: DB_PWD, HF_TOKEN, SSH_KEY, DATABASE_URL, SLACK_WEBHOOK_URL. Only the ending counts, so that
# hyperparameters such as max_token_length or password_min_length pass.
SECRET_WORDS = {
    "password", "passwd", "pwd", "passphrase", "secret", "token", "apikey", "credential", "credentials",
    "pat", "dsn", "webhook", "privatekey", "sshkey", "accesskey", "secretkey", "connectionstring",
    "bearer", "cookie", "authtoken", "accountkey", "masterkey", "encryptionkey", "sastoken",
}  # fmt: skip
SECRET_PAIRS = {
    ("api", "key"), ("access", "key"), ("secret", "key"), ("private", "key"), ("ssh", "key"), ("signing", "key"),
    ("database", "url"), ("db", "url"), ("webhook", "url"), ("connection", "string"), ("client", "secret"),
    ("account", "key"), ("master", "key"), ("encryption", "key"), ("client", "key"), ("auth", "key"),
    ("session", "key"), ("storage", "key"), ("license", "key"), ("app", "secret"), ("private", "pem"),
}  # fmt: skip
# Tokens that are words, not credentials: a tokenizer's special tokens (Hugging Face names them
# eos_token, pad_token, ...), passed as hyperparameters by every language-model recipe.
VOCABULARY_TOKENS = {
    "eos", "bos", "pad", "unk", "sep", "cls", "mask", "start", "end", "stop", "special", "begin", "decoder",
    "sentinel", "image", "audio", "video", "think", "tool", "system", "user", "assistant",
}  # fmt: skip
# A last segment that makes the variable a reference to a secret (its ARN, name or path), which is
# the recommended way: the job reads the secret itself.
REFERENCE_WORDS = {"arn", "name", "id", "path", "parameter", "param", "ref", "secretid"}

SECRET_VALUES = [
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), "an AWS access key id"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@"), "a URL with a password"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36}\b|\bgithub_pat_[A-Za-z0-9_]{22,}"), "a GitHub token"),
    (re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}"), "a GitLab token"),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), "a Slack token"),
    (re.compile(r"hooks\.slack\.com/services/[A-Za-z0-9/]+"), "a Slack webhook URL"),
    (re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"), "a Hugging Face token"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{32,}"), "an API secret key (sk-...)"),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"), "a Google API key"),
    (re.compile(r"\b[rs]k_(?:live|test)_[0-9A-Za-z]{20,}"), "a Stripe key"),
    (re.compile(r"\bSG\.[\w-]{16,}\.[\w-]{30,}"), "a SendGrid key"),
    (re.compile(r"\bnpm_[A-Za-z0-9]{36}\b"), "an npm token"),
    (re.compile(r"\bpypi-AgE[A-Za-z0-9_-]{50,}"), "a PyPI token"),
    (re.compile(r"\bdapi[0-9a-f]{32}\b"), "a Databricks token"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), "a signed token (JWT)"),
    (re.compile(r"AccountKey=[A-Za-z0-9+/]{40,}={0,2}"), "an Azure storage account key"),
    (re.compile(r"\b[Bb]earer\s+[A-Za-z0-9._~+/-]{20,}=*"), "a bearer token"),
]

ADVICE = (
    "the execution input and its history would show it to anyone who may read executions; keep the secret "
    "in Secrets Manager or SSM Parameter Store and have the job read it through its role "
    "(pass the secret's ARN or name instead, e.g. DB_PASSWORD_ARN)"
)


def segments(name: str) -> list[str]:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    return [part for part in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if part]


def secret_name(name: str) -> bool:
    """Whether a variable named so holds a secret (rather than a reference to one)."""
    parts = segments(name)
    if not parts or parts[-1] in REFERENCE_WORDS:
        return False
    if parts[-1] == "token" and len(parts) > 1 and parts[-2] in VOCABULARY_TOKENS:
        return False
    last_two = tuple(parts[-2:])
    return parts[-1] in SECRET_WORDS or "".join(last_two) in SECRET_WORDS or last_two in SECRET_PAIRS


def secret_value(text: str) -> str | None:
    """What a string looks like when it looks like a credential, else None."""
    for pattern, what in SECRET_VALUES:
        if pattern.search(text):
            return what
    return None


def find(item: Any) -> list[Problem]:
    """Every field of an item that holds, or is named for, a secret."""
    problems = []
    for path, key, value, in_variables in _walk(item, "", None, False):
        if in_variables and key is not None and secret_name(key):
            problems.append(Problem(path, f"is named like a secret; {ADVICE}"))
        elif isinstance(value, str) and (what := secret_value(value)):
            problems.append(Problem(path, f"holds what looks like {what}; {ADVICE}"))
    return problems


def _walk(value: Any, path: str, key: str | None, in_variables: bool) -> Iterator[tuple[str, str | None, Any, bool]]:
    """(path, key, value, whether its key is a variable name) for every node, without deep recursion
    concerns: items nest at most 32 levels (bounds.ITEM_DEPTH)."""
    yield path, key, value, in_variables
    if isinstance(value, dict):
        for name, entry in value.items():
            yield from _walk(entry, join(path, str(name)), str(name), key in VARIABLE_MAPS)
    elif isinstance(value, list):
        for index, entry in enumerate(value):
            yield from _walk(entry, join(path, index), None, False)
