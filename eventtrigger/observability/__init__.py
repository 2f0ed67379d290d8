"""Logs, health and metrics: what operators see."""
