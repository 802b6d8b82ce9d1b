"""Pure ML code run by the workers: runners, evaluation, the model cache, resource figures.

Nothing here touches the ORM or Django: a runner takes a :class:`saas.contract.TrainSpec`
and returns a :class:`saas.contract.TrainResult`. Importing this package is cheap; TensorFlow
loads when a submodule that needs it is imported (after :mod:`workers.ml.tf_env`).
"""
