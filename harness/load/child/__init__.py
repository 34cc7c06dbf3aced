"""What runs only inside the Locust child processes (imports gevent and Locust).

:mod:`.locustfile` is the file ``python -m locust -f`` loads
(:data:`harness.load.runner.LOCUSTFILE`); it wires :mod:`.control` (one run's
coordination), :mod:`.openloop` (open-loop arrivals) and :mod:`.sink` (request records) to
Locust's events. The harness process never imports this package; importing it does not
import gevent (only its modules do).
"""
