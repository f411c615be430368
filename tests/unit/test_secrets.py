"""The secret detector: names and values, in every place an item can put them; refusals that name the
field and never repeat the value; names that only look alike pass."""

from __future__ import annotations

from typing import Any

import pytest

from mlops_sfn.core.plan import check_with_sample
from mlops_sfn.core.secrets import secret_name, secret_value
from tests.conftest import edited, load_item

# Where an item can place variables, hyperparameters or arguments a job sees.
TRAINING = "stages.training.request"
PLACES = {
    "processing environment": "stages.preprocessing.request.Environment",
    "training environment": f"{TRAINING}.Environment",
    "hyperparameters": f"{TRAINING}.HyperParameters",
    "tuning static hyperparameters": "stages.tuning.request.TrainingJobDefinition.StaticHyperParameters",
    "model container environment": "stages.create_model.request.PrimaryContainer.Environment",
}

SECRET_NAMES = [
    "DB_PASSWORD", "DB_PWD", "PASSPHRASE", "SSH_KEY", "DATABASE_URL", "GITHUB_PAT", "SLACK_WEBHOOK_URL",
    "HF_TOKEN", "AWS_SECRET_ACCESS_KEY", "apiKey", "client-secret", "MLFLOW_TRACKING_TOKEN", "SENTRY_DSN",
    "AZURE_STORAGE_ACCOUNT_KEY", "MASTER_KEY", "ENCRYPTION_KEY", "SESSION_KEY", "AUTH_BEARER", "SESSION_COOKIE",
    "WANDB_API_KEY", "CLIENT_KEY", "LICENSE_KEY", "APP_SECRET", "PRIVATE_PEM", "AUTH_TOKEN", "SAS_TOKEN",
]  # fmt: skip
# Names a job commonly uses that are not secrets, including references to secrets (the advised way).
HARMLESS_NAMES = [
    "max_token_length", "max_new_tokens", "TOKENIZER_NAME", "password_min_length", "DB_PASSWORD_ARN",
    "API_KEY_SECRET_NAME", "SECRET_ID", "PATH", "SAGEMAKER_PROGRAM", "learning_rate", "BYPASS_CACHE",
    "eos_token", "pad_token", "bos_token", "unk_token", "sep_token", "cls_token", "mask_token",
    "additional_special_tokens", "decoder_start_token", "max_tokens", "primary_key", "sort_key",
    "partition_key", "key_column", "tokenizer_name_or_path", "SECRET_ARN", "HF_TOKEN_SECRET_ARN",
]  # fmt: skip

SECRET_VALUES = {
    "AWS access key": "AKIAIOSFODNN7EXAMPLE",
    "URL with a password": "postgres://ml:hunter2@db.internal:5432/features",
    "GitHub token": "ghp_" + "a1B2" * 9,
    "GitHub fine-grained token": "github_pat_" + "11ABCDEFG0" * 3,
    "GitLab token": "glpat-" + "x" * 20,
    "private key": "-----BEGIN RSA PRIVATE KEY-----\nMIIE...",
    "Slack webhook": "https://hooks.slack.com/services/T000/B000/XXXX",
    "Hugging Face token": "hf_" + "AbCd" * 9,
    "Stripe key": "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
    "SendGrid key": "SG." + "a" * 22 + "." + "B" * 43,
    "npm token": "npm_" + "Ab1" * 12,
    "PyPI token": "pypi-AgEIcHlwaS5vcmc" + "x" * 60,
    "Databricks token": "dapi" + "0123456789abcdef" * 2,
    "JWT": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "Azure storage key": "DefaultEndpointsProtocol=https;AccountName=ml;AccountKey=" + "Ab1+" * 22 + "==",
    "bearer token": "Authorization: Bearer " + "abc.DEF-123_xyz" * 2,
}
HARMLESS_VALUES = [
    "s3://bucket/data/", "https://example.com/a:b", "ml.m5.xlarge", "0.1", "postgres://db/features",
    "</s>", "<pad>", "[CLS]", "sk_model_v2", "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf",
    "bearer", "eyJustAWord", "SG.small", "dapi",
]  # fmt: skip


def problems_at(item: dict[str, Any], path: str) -> list[str]:
    return [problem.message for problem in check_with_sample(item) if problem.path == path]


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_secret_names_are_recognised(name: str) -> None:
    assert secret_name(name), name


@pytest.mark.parametrize("name", HARMLESS_NAMES)
def test_names_that_only_look_alike_pass(name: str) -> None:
    assert not secret_name(name), name


@pytest.mark.parametrize("value", list(SECRET_VALUES.values()), ids=list(SECRET_VALUES))
def test_secret_values_are_recognised(value: str) -> None:
    assert secret_value(value)


@pytest.mark.parametrize("value", HARMLESS_VALUES)
def test_values_that_only_look_alike_pass(value: str) -> None:
    assert secret_value(value) is None


@pytest.mark.parametrize("place", list(PLACES), ids=list(PLACES))
def test_a_secret_name_is_refused_wherever_a_job_sees_it(place: str) -> None:
    path = f"{PLACES[place]}.DB_PWD"
    (message,) = problems_at(edited(load_item(), {path: "not-even-secret"}), path)
    assert "named like a secret" in message and "Secrets Manager" in message and "not-even-secret" not in message


@pytest.mark.parametrize("place", list(PLACES), ids=list(PLACES))
@pytest.mark.parametrize("kind", list(SECRET_VALUES))
def test_a_secret_value_is_refused_under_any_name_never_repeated(place: str, kind: str) -> None:
    path = f"{PLACES[place]}.settings"
    value = SECRET_VALUES[kind]
    (message,) = problems_at(edited(load_item(), {path: value}), path)
    assert "looks like" in message and value not in message


def test_a_secret_in_container_arguments_is_refused() -> None:
    path = "stages.preprocessing.request.AppSpecification.ContainerArguments[1]"
    (message,) = problems_at(edited(load_item(), {path: "postgres://ml:hunter2@db/x"}), path)
    assert "a URL with a password" in message and "hunter2" not in message


def test_a_reference_to_a_secret_is_the_advised_way_and_passes() -> None:
    item = edited(
        load_item(), {f"{TRAINING}.Environment.DB_PASSWORD_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:db"}
    )
    assert check_with_sample(item) == []
