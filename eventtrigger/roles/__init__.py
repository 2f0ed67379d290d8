"""The four roles. Each is a coroutine `run(resources, stop)` that returns when `stop` is set."""
