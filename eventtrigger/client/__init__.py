"""The `eventtrigger triggers ...` / `eventtrigger events ...` command-line client.

It talks to a running API over HTTP only (`EVENTTRIGGER_URL`, `EVENTTRIGGER_API_KEY`) and
uses nothing but the standard library, so it needs no database or Kafka settings and
starts fast. `api` makes the requests, `render` turns answers into tables, `commands`
wires both to argparse and chooses exit codes.
"""
