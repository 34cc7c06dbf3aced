"""Controllers of the emulated cluster: KServe, Knative, KPA, Deployments, scheduler, kubelet.

Each controller runs on one asyncio loop, reads the in-process store
through watches (never HTTP polling) and writes back through the same store, so clients of
the HTTP API see every change as a real cluster would show it.
"""
