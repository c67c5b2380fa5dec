"""The search backends: each picks values and schedules trials, and runs
them through `tuning.study.runner.TrialRunner`.

    keras_tuner.py  Keras Tuner oracles and the tuner
    kt_workers.py   a Keras Tuner chief and its worker processes
    ray_tune.py     Ray Tune searchers, schedulers and the trainable
"""
