"""Development and build tooling, not installed with the package: the mypyc
build of the detection core (``python -m tools.native build``) and the
embedded broker's compatibility matrix (``python -m tools.broker_matrix``)."""
