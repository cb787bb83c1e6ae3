"""Bytes <-> JSON-RPC messages: framing, the stdio/TCP connection, envelope checks.

Nothing here knows of agents; it imports no crush_ls module but `protocol`.
`framing` is stdlib only (the terminal client uses it and must start fast).
"""
