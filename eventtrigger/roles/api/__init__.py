"""The api role: the HTTP API (starlette, served by uvicorn)."""
