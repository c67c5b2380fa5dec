"""The study's space as Ray Tune sees it: domains, grid points, Optuna's
define-by-run space, and the searcher and scheduler of each algorithm.

    searcher, scheduler, param_space, num_samples = search(spec)

Imported through `tuning.backends.ray_tune`, which sets Ray's environment
first.
"""

from ray import tune

from tuning.study.space import Dimension
from tuning.study.spec import StudySpec


def domain(d: Dimension):
    """One dimension as a Ray Tune domain."""
    if d.kind == "choice":
        return tune.choice(list(d.values))
    if d.kind == "int":
        if d.log:
            return tune.lograndint(int(d.low), int(d.high) + 1)
        return tune.qrandint(int(d.low), int(d.high), int(d.step or 1))
    if d.log:
        return tune.loguniform(d.low, d.high)
    if d.step:
        return tune.quniform(d.low, d.high, d.step)
    return tune.uniform(d.low, d.high)


def param_space(spec: StudySpec) -> dict:
    """Every dimension as a Ray Tune domain (conditions apply in the
    trial: inactive keys are dropped before the config is built)."""
    return {d.key: domain(d) for d in spec.space.dimensions}


def grid_points(spec: StudySpec) -> list[dict]:
    """Every combination of the grid, respecting conditions."""
    points = [{}]
    for d in spec.space.dimensions:
        grown = []
        for point in points:
            if d.when and point.get(d.when[0]) not in d.when[1]:
                grown.append(point)
                continue
            grown.extend({**point, d.key: v} for v in d.grid())
        points = grown
    return points


class OptunaSpace:
    """The space define-by-run for Optuna, so conditions hold (a class,
    not a closure: Ray pickles the searcher with its experiment state)."""

    def __init__(self, spec: StudySpec):
        self.dimensions = spec.space.dimensions

    def __call__(self, trial):
        values = {}
        for d in self.dimensions:
            if d.when and values.get(d.when[0]) not in d.when[1]:
                continue
            if d.kind == "choice":
                values[d.key] = trial.suggest_categorical(d.key,
                                                          list(d.values))
            elif d.kind == "int":
                values[d.key] = trial.suggest_int(
                    d.key, int(d.low), int(d.high),
                    step=1 if d.log else int(d.step or 1), log=d.log)
            else:
                values[d.key] = trial.suggest_float(
                    d.key, d.low, d.high, step=d.step, log=d.log)


def search(spec: StudySpec, *, max_concurrent: int = 0):
    """(search_alg, scheduler, param_space, num_samples) for the spec.

    `max_concurrent` (0: as many as fit) caps the trials running at once
    for the variant generator, which Ray's `max_concurrent_trials` does
    not reach (it wraps searchers such as TPE's only).

    Raises:
        ConfigError: PBT over a space without a `train.*` dimension.
    """
    from ray.tune.schedulers import (
        ASHAScheduler,
        HyperBandScheduler,
        PopulationBasedTraining,
    )
    from ray.tune.search.basic_variant import BasicVariantGenerator

    space = param_space(spec)
    random = BasicVariantGenerator(random_state=spec.seed,
                                   max_concurrent=max_concurrent)
    if spec.algorithm == "grid":
        points = grid_points(spec)[:spec.max_trials]
        return (BasicVariantGenerator(points_to_evaluate=points,
                                      random_state=spec.seed,
                                      max_concurrent=max_concurrent),
                None, space, len(points))
    if spec.algorithm == "tpe":
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        searcher = OptunaSearch(
            space=OptunaSpace(spec), metric=spec.objective, mode=spec.mode,
            sampler=optuna.samplers.TPESampler(seed=spec.seed))
        return searcher, None, {}, spec.max_trials
    if spec.algorithm == "asha":
        scheduler = ASHAScheduler(time_attr="epoch", max_t=spec.max_epochs,
                                  grace_period=1, reduction_factor=3)
    elif spec.algorithm == "hyperband":
        scheduler = HyperBandScheduler(time_attr="epoch",
                                       max_t=spec.max_epochs)
    elif spec.algorithm == "pbt":
        mutations = {d.key: domain(d) for d in spec.space.dimensions
                     if d.key.startswith("train.") and not d.when}
        if not mutations:
            from tuning.trial.config import ConfigError

            raise ConfigError(
                "pbt mutates training keys only (weights carry over "
                "between trials): the space needs a train.* dimension, "
                "e.g. train.learning_rate")
        scheduler = PopulationBasedTraining(
            time_attr="epoch", perturbation_interval=1,
            hyperparam_mutations=mutations)
    else:
        scheduler = None
    return random, scheduler, space, spec.max_trials
