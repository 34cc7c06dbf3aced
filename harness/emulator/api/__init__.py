"""The emulated Kubernetes API server: store, HTTP layer, watches, discovery.

:mod:`.store` holds the objects (validation, defaulting, patches, selectors, resource
versions, :mod:`.subscriptions` for watches); :mod:`.apiserver` is the official client's
wire surface over it (with :mod:`.discovery` built from the :mod:`.registry`, and
:mod:`.faults` injected per request); :mod:`.process` starts and stops it (in-process or as
a child process). Nothing here knows the controllers or the data plane.
"""
