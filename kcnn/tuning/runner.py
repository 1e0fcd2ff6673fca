"""`search`: a keras-tuner search over a kcnn space, and the files it writes at the end."""

from __future__ import annotations

import os
import time

import keras
import keras_tuner

from kcnn import checks
from kcnn.errors import UserError
from kcnn.files import save_model, write_json
from kcnn.training import fit_verbosity
from kcnn.tuning.data import SearchData, search_data
from kcnn.tuning.engine import SearchError, make_tuner, search_role
from kcnn.tuning.results import (
    BEST_HYPERPARAMETERS,
    BEST_MODEL,
    RESULTS_CSV,
    RESULTS_MARKDOWN,
    SearchResult,
    best_trial,
    write_results,
)
from kcnn.tuning.spaces import SPACES, CNNHyperModel, KcnnHyperModel

TUNERS = ("random", "hyperband", "bayesian")
DEFAULT_DIRECTORY = os.path.join("results", "tune")


def search(
    hypermodel,
    data,
    *,
    tuner: str = "random",
    objective="val_accuracy",
    max_trials: int | None = 10,
    epochs: int = 10,
    patience: int | None = 3,
    directory=DEFAULT_DIRECTORY,
    project_name: str = "search",
    hyperparameters=None,
    seed: int = 0,
    executions_per_trial: int = 1,
    hyperband_factor: int = 3,
    max_consecutive_failures: int = 3,
    callbacks=(),
    overwrite: bool = False,
    verbose="auto",
) -> SearchResult:
    """Search ``hypermodel``'s space on ``data`` with keras-tuner and save what it finds.

    The first trial trains the space's defaults (for kcnn's spaces, the documented model), so
    the results always hold that baseline; the tuner chooses the others. Each trial builds its
    model after ``keras.utils.clear_session()`` (keras-tuner's graphs and models otherwise pile
    up in memory), trains it for at most ``epochs`` with early stopping on the objective, and
    is timed. After every trial, ``results.csv`` and ``results.md`` in the
    project folder list every trial; at the end the best model is saved there as
    ``best_model.keras`` (written atomically; `kcnn.load_model` loads it) and its
    hyperparameters as ``best_hyperparameters.json``. A trial whose model cannot be built or
    trained is recorded as failed, with its error, and the search goes on.

    Args:
        hypermodel: a `KcnnHyperModel` (or any ``keras_tuner.HyperModel`` whose ``fit`` takes a
            `SearchData`), or a space name, ``"cnn"`` or ``"resnet"``, built for ``data.info``.
        data: a `SearchData`, a pair of batched ``tf.data.Dataset`` objects ``(train,
            validation)``, or a source for `SearchData` (a dataset name, folder, uint8 arrays).
        tuner: ``"random"`` (random search), ``"hyperband"`` (Li et al., JMLR 2018) or
            ``"bayesian"`` (Gaussian-process Bayesian optimisation).
        objective: the metric to optimise (a Keras log name such as ``"val_accuracy"`` or
            ``"val_loss"``, or a ``keras_tuner.Objective``).
        max_trials: the number of trials (for Hyperband, a cap on its schedule; None: none).
        epochs: the most epochs a trial trains (Hyperband's ``max_epochs``).
        patience: early stopping's patience in epochs on the objective (None: no early stopping).
        directory, project_name: the search lives in ``directory/project_name``.
        hyperparameters: a ``keras_tuner.HyperParameters`` that fixes (``hp.Fixed``) or narrows
            hyperparameters of the space.
        seed: the oracle's random seed.
        executions_per_trial: trainings per trial (from new initialisations), averaged.
        hyperband_factor: Hyperband's reduction factor.
        max_consecutive_failures: stop after this many failed trials in a row.
        callbacks: more Keras callbacks for every trial (they must be deep-copyable).
        overwrite: delete an existing search of that name first instead of resuming it (refused
            in a distributed search, where the folder is shared, and for a folder that holds
            something else than a search: keras-tuner deletes the whole folder).
        verbose: keras-tuner's and ``fit``'s verbosity (``"auto"``: a progress bar on a
            terminal, one line per epoch elsewhere; see `kcnn.training.fit_verbosity`).

    Returns:
        a `SearchResult`.

    Raises:
        ValueError: for a bad argument.
        SearchError: when ``max_consecutive_failures`` trials fail in a row, or no trial
            completes; the message gives the last error and the results table is written.

    Example:
        >>> hp = keras_tuner.HyperParameters()
        >>> hp.Fixed("augment", "light")
        >>> result = search("cnn", "fashion_mnist", tuner="bayesian", max_trials=15,
        ...                 hyperparameters=hp, project_name="cnn_bayes")
    """
    start = time.perf_counter()
    if tuner not in TUNERS:
        raise UserError(f"tuner must be one of {TUNERS}, got {tuner!r}")
    epochs = checks.positive_int("epochs", epochs)
    executions_per_trial = checks.positive_int("executions_per_trial", executions_per_trial)
    max_consecutive_failures = checks.positive_int(
        "max_consecutive_failures", max_consecutive_failures
    )
    if max_trials is not None or tuner != "hyperband":
        max_trials = checks.positive_int("max_trials", max_trials)
    if patience is not None:
        patience = checks.positive_int("patience", patience)
    hyperband_factor = checks.integer("hyperband_factor", hyperband_factor, low=2)
    role = search_role()
    if overwrite and role != "local":
        raise UserError("overwrite=True would delete the folder a distributed search shares")
    if overwrite:
        check_search_folder(os.path.join(os.fspath(directory), project_name))
    data = search_data(data)
    hypermodel = _hypermodel(hypermodel, data)
    hps = keras_tuner.HyperParameters() if hyperparameters is None else hyperparameters.copy()
    if not data.augmentable and isinstance(hypermodel, CNNHyperModel) and "augment" not in hps:
        hps.Fixed("augment", "none")
    search_tuner = make_tuner(
        tuner,
        hypermodel,
        objective=objective,
        hyperparameters=hps,
        seed=seed,
        max_trials=max_trials,
        epochs=epochs,
        hyperband_factor=hyperband_factor,
        directory=os.fspath(directory),
        project_name=project_name,
        overwrite=overwrite,
        executions_per_trial=executions_per_trial,
        max_consecutive_failures=max_consecutive_failures,
    )
    target = search_tuner.oracle.objective
    fit_callbacks = list(callbacks)
    if patience is not None:
        fit_callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=target.name, mode=target.direction, patience=patience
            )
        )
    search_tuner.search(
        data, epochs=epochs, callbacks=fit_callbacks, verbose=fit_verbosity(verbose)
    )
    project_dir = search_tuner.project_dir
    if role == "worker":
        return SearchResult(role=role, project_dir=project_dir, seconds=time.perf_counter() - start)
    return _finish(search_tuner, hypermodel, role, project_dir, start)


def check_search_folder(project_dir: str) -> None:
    """Refuse to let ``overwrite=True`` delete ``project_dir`` unless it is empty or holds a
    keras-tuner search (its ``oracle.json``): keras-tuner deletes the whole folder, which could
    be a training run's under a mistyped project name."""
    if not os.path.lexists(project_dir):
        return
    empty = os.path.isdir(project_dir) and not os.listdir(project_dir)
    if not empty and not os.path.isfile(os.path.join(project_dir, "oracle.json")):
        raise UserError(
            f"overwrite=True would delete {project_dir!r}, which holds no search (no "
            "oracle.json): choose another project name or folder"
        )


def _finish(search_tuner, hypermodel, role, project_dir, start) -> SearchResult:
    """Write the results table, the best model and its hyperparameters."""
    oracle = search_tuner.oracle
    rows = write_results(oracle, project_dir)
    trial = best_trial(oracle)
    if trial is None:
        raise SearchError(
            f"no trial of the search in {project_dir} completed; the errors are in "
            f"{os.path.join(project_dir, RESULTS_MARKDOWN)}"
        )
    model = search_tuner.load_model(trial)  # its weights at its best epoch
    model_path = os.path.join(project_dir, BEST_MODEL)
    save_model(model, model_path)
    hp = trial.hyperparameters
    described = {
        "trial_id": trial.trial_id,
        "objective": oracle.objective.name,
        "direction": oracle.objective.direction,
        "score": trial.score,
        "hyperparameters": dict(hp.values),
    }
    if isinstance(hypermodel, KcnnHyperModel):
        described["builder"] = hypermodel.builder
        described["builder_arguments"] = hypermodel.model_arguments(hp.copy())
        described["training_arguments"] = hypermodel.training_arguments(hp.copy())
    hyperparameters_path = write_json(os.path.join(project_dir, BEST_HYPERPARAMETERS), described)
    keras.utils.clear_session(free_memory=True)
    return SearchResult(
        role=role,
        project_dir=project_dir,
        objective=oracle.objective.name,
        best_trial=trial.trial_id,
        best_score=float(trial.score),
        best_hyperparameters=dict(hp.values),
        trials=rows,
        model_path=model_path,
        hyperparameters_path=hyperparameters_path,
        results_csv=os.path.join(project_dir, RESULTS_CSV),
        results_markdown=os.path.join(project_dir, RESULTS_MARKDOWN),
        seconds=time.perf_counter() - start,
    )


def _hypermodel(hypermodel, data: SearchData):
    if isinstance(hypermodel, str):
        if hypermodel not in SPACES:
            raise UserError(
                f"hypermodel must be one of {tuple(SPACES)} or a HyperModel, got {hypermodel!r}"
            )
        if data.info is None:
            raise UserError(
                f"hypermodel={hypermodel!r} needs a data source to know the input shape and the "
                f"classes; with ready-made datasets pass {SPACES[hypermodel].__name__}("
                "input_shape=..., classes=...)"
            )
        return SPACES[hypermodel](data.info)
    if not isinstance(hypermodel, keras_tuner.HyperModel):
        raise UserError(
            f"hypermodel must be a keras_tuner.HyperModel or one of {tuple(SPACES)}, got "
            f"{type(hypermodel).__name__}"
        )
    return hypermodel
