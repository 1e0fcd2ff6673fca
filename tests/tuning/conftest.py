"""Fixtures of the tuning tests: tiny image arrays and a search space fixed to small models."""

import pytest

from tests.tuning.search_script import tiny_arrays, tiny_hyperparameters


@pytest.fixture
def arrays():
    return tiny_arrays()


@pytest.fixture
def small_space():
    return tiny_hyperparameters()
