"""The console reads as English: model plurals are the ones a person would write."""

import re

import pytest
from django.apps import apps

PROJECT_APPS = {"controlplane", "integrations", "traces", "bots", "execution", "backtests", "observatory"}

# What Django's "add an s" gives for words it does not know: settingss, matrixs, batchs, switchs, inventorys.
MACHINE_PLURAL = re.compile(r"(ss|xs|chs|shs|[^aeiou]ys)$")


def project_models():
    return [model for model in apps.get_models() if model._meta.app_label in PROJECT_APPS]


@pytest.mark.parametrize("model", project_models(), ids=lambda model: model._meta.label)
def test_no_model_has_a_machine_made_plural(model):
    assert not MACHINE_PLURAL.search(str(model._meta.verbose_name_plural))


@pytest.mark.parametrize(("label", "plural"), [
    ("backtests.BacktestMatrix", "backtest matrices"),
    ("backtests.ClassificationSettings", "classification settings"),
    ("execution.TickBatch", "tick batches"),
    ("traces.ProfitVariables", "profit variables"),
    ("bots.TenantKillSwitch", "tenant kill switches"),
])
def test_the_plurals_the_issue_named_read_as_english(label, plural):
    assert apps.get_model(label)._meta.verbose_name_plural == plural
