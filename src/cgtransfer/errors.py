"""The failures of a simulation that are results, not bugs: raised by the MD protocol and by a model's force
evaluation, recorded by the stages as an unstable run with where and why it failed."""


class SimulationDiverged(RuntimeError):
    """A simulation produced a non-finite energy, temperature or coordinate."""


class CollapsedBox(RuntimeError):
    """The periodic box shrank below twice the model's pair range: a model collapsing under the barostat.
    (OpenMM passes a PythonForce's error on as its message only: "box collapsed" is what marks it.)"""


class NonFiniteModelOutput(RuntimeError):
    """The model returned NaN/inf, or was handed non-finite coordinates."""
