"""The mutation matrix: every check against every emulator mutation.

:mod:`harness.matrix.scenarios` records the scenarios on an emulated cluster (a
:class:`~harness.matrix.scenarios.Run`, saved and replayed from one gzipped JSON file);
:mod:`harness.matrix.evaluation` runs the checks on a run and draws the table. It sits
above the emulator, the checks and the recorder, so none of them imports it
(``make mutation-matrix``, ``tests/test_mutation_matrix*.py``).
"""
