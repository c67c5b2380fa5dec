"""One trial (`tuning.trial.train_and_evaluate`) and what composes trials.

`tuning.config` is plain Python; `tuning.trial` imports TensorFlow.
"""
