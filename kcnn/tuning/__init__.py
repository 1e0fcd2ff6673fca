"""Hyperparameter search with keras-tuner over kcnn's builders.

- `CNNHyperModel` and `ResNetHyperModel`: ``keras_tuner.HyperModel`` subclasses whose
  ``build(hp)`` declares a search space with explicit defaults and builds a kcnn model
  (`kcnn.models.configurable_cnn`, `kcnn.models.resnet`) under kcnn's precision policy, compiled
  with kcnn's optimizers (`kcnn.training.compile_model`). Their defaults build the documented
  models: `simple_cnn` with Adam 1e-3, and `resnet18` with the CIFAR stem.
- `SearchData`: the training and validation data of a search, made by `kcnn.data.make_dataset`
  once per augmentation preset a trial asks for.
- `search`: runs a ``"random"``, ``"hyperband"`` or ``"bayesian"`` search -- whose first trial is
  the space's defaults -- with early stopping in each trial, clears the Keras session between
  trials, and writes, in the project folder, the
  results table of every trial (``results.csv`` and ``results.md``: hyperparameters, score,
  time, status, error), the best model (``best_model.keras``, atomically) and its
  hyperparameters (``best_hyperparameters.json``).

Resuming: run the same search again with the same ``directory`` and ``project_name``. keras-tuner
reloads its oracle and its trials; a trial that was running when the process died (even from a
SIGKILL) runs again, and finished trials are never repeated. ``kcnn_trial.json`` in each trial
folder counts its attempts and records its time.

Distributed search uses keras-tuner's chief/worker mode: start the same script (or ``kcnn tune``
command) once per process, all with the same shared ``directory``, and set in each
``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT`` (where the chief listens) and
``KERASTUNER_TUNER_ID`` (``chief`` for the one process that runs the oracle, a distinct name such
as ``tuner0``, ``tuner1`` for each worker). The workers train the trials; the chief hands them out
over gRPC and, when the search is over, writes the results and the best model.

The package, one job per module: `kcnn.tuning.spaces` (the HyperModels), `kcnn.tuning.data`
(`SearchData`), `kcnn.tuning.engine` (keras-tuner's oracles and tuners as kcnn runs them,
`search_role`), `kcnn.tuning.results` (the results table, `best_trial`, `SearchResult`) and
`kcnn.tuning.runner` (`search`).

Example:
    >>> from kcnn import tuning
    >>> data = tuning.SearchData("fashion_mnist", batch_size=128)
    >>> result = tuning.search(tuning.CNNHyperModel(data.info), data, tuner="hyperband",
    ...                        max_trials=20, epochs=9, directory="results/tune")
    >>> result.best_hyperparameters, result.model_path
"""

from kcnn.tuning.data import AUGMENT_PRESETS, SearchData
from kcnn.tuning.engine import SearchError, search_role
from kcnn.tuning.results import (
    BEST_HYPERPARAMETERS,
    BEST_MODEL,
    FAILED_STATUSES,
    RESULTS_CSV,
    RESULTS_MARKDOWN,
    TRIAL_RECORD,
    SearchResult,
    best_trial,
    write_results,
)
from kcnn.tuning.runner import TUNERS, search
from kcnn.tuning.spaces import SPACES, CNNHyperModel, KcnnHyperModel, ResNetHyperModel

__all__ = [
    "AUGMENT_PRESETS",
    "BEST_HYPERPARAMETERS",
    "BEST_MODEL",
    "FAILED_STATUSES",
    "RESULTS_CSV",
    "RESULTS_MARKDOWN",
    "SPACES",
    "TRIAL_RECORD",
    "TUNERS",
    "CNNHyperModel",
    "KcnnHyperModel",
    "ResNetHyperModel",
    "SearchData",
    "SearchError",
    "SearchResult",
    "best_trial",
    "search",
    "search_role",
    "write_results",
]
