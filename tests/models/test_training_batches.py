"""`batches: one_per_treatment` in `fit`: treatments from the cells, clear errors without them."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from cellbench.errors import ConfigError
from cellbench.models.training import fit, treatment_groups
from tests.models import fit_settings

CELLS = pd.DataFrame(
    {
        "Metadata_Compound": ["taxol", "taxol", "DMSO", "taxol"],
        "Metadata_Concentration": [1.0, 3.0, 0.0, 1.0],
        "Metadata_Well": ["B02", "B03", "B04", "B05"],
    }
)


def test_treatments_join_compound_and_concentration():
    settings = fit_settings(batches="one_per_treatment")
    groups = treatment_groups(settings.training, CELLS)
    assert list(groups) == ["taxol+1.0", "taxol+3.0", "DMSO+0.0", "taxol+1.0"]
    rows = np.array([True, False, True, False])
    assert list(treatment_groups(settings.training, CELLS, rows)) == ["taxol+1.0", "DMSO+0.0"]
    by_well = fit_settings(batches="one_per_treatment", treatment_columns=["Metadata_Well"])
    assert len(set(treatment_groups(by_well.training, CELLS))) == 4
    assert treatment_groups(fit_settings().training, CELLS) is None  # batches: random


def test_a_missing_treatment_column_names_the_key():
    settings = fit_settings(batches="one_per_treatment", treatment_columns=["Metadata_Dose"])
    with pytest.raises(ConfigError, match=r"treatment_columns: \['Metadata_Dose'\]"):
        treatment_groups(settings.training, CELLS)


def test_fit_draws_one_cell_per_treatment_per_batch(tmp_path):
    groups = np.array(["a", "a", "a", "b", "b", "c", "c", "c", "c"])
    seen = []

    class Spy(nn.Linear):
        def forward(self, x):
            if self.training:
                seen.append(x[:, 1].long().tolist())
            return super().forward(x)

    x = torch.stack([torch.randn(9), torch.arange(9.0)], dim=1)
    data = TensorDataset(x, torch.randn(9, 1))
    settings = fit_settings(batches="one_per_treatment", epochs=2, groups=groups)
    fit(Spy(2, 1), data, None, nn.functional.mse_loss, settings, tmp_path / "c.pt")
    assert len(seen) == 2 * 3 and all(len(b) == 3 for b in seen)
    assert all(len(set(groups[b])) == 3 for b in seen)


def test_one_per_treatment_without_treatments_is_a_config_error(tmp_path):
    data = TensorDataset(torch.randn(6, 2), torch.randn(6, 1))
    settings = fit_settings(batches="one_per_treatment")
    with pytest.raises(ConfigError, match="batches: one_per_treatment"):
        fit(nn.Linear(2, 1), data, None, nn.functional.mse_loss, settings, tmp_path / "c.pt")
