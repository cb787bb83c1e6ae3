"""The floor for start-up: a pygls server that does nothing but answer initialize."""

from pygls.lsp.server import LanguageServer

server = LanguageServer("bare", "0.0.0")

if __name__ == "__main__":
    server.start_io()
