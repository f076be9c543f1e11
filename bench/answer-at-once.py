#!/usr/bin/env python3
"""A stand-in Docker daemon for bench/docker-api: answers the requests `docker run -d`
and `docker rm -f` send (ping, create, wait, start, delete) at once, with canned bodies
and no container. What the docker CLI takes against it is the client's own share of a
`run -d` or `rm -f`, whatever daemon serves it. Usage: answer-at-once.py SOCKET"""
import http.server
import json
import os
import socketserver
import sys

ID = "a" * 64


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, code, body=b"", ctype="application/json"):
        try:
            self.send_response(code)
            self.send_header("Api-Version", "1.50")
            self.send_header("Ostype", "linux")
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD" and body:
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            # The client hung up once it had what it needed (rm -f does).
            self.close_connection = True

    def do_HEAD(self):
        self.answer(200, b"OK", "text/plain")

    def do_GET(self):
        if self.path.endswith("/_ping"):
            self.answer(200, b"OK", "text/plain")
        else:
            self.answer(404, b'{"message":"not served by the stand-in"}')

    def do_DELETE(self):
        self.answer(204)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        path = self.path.split("?")[0]
        if path.endswith("/containers/create"):
            self.answer(201, json.dumps({"Id": ID, "Warnings": []}).encode())
        elif path.endswith("/wait"):
            self.answer(200, b'{"StatusCode":0}\n')
        elif path.endswith("/start"):
            self.answer(204)
        else:
            self.answer(404, b'{"message":"not served by the stand-in"}')


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):
        conn, _ = self.socket.accept()
        return conn, ("local", 0)


if __name__ == "__main__":
    path = sys.argv[1]
    if os.path.exists(path):
        os.unlink(path)
    Server(path, Handler).serve_forever()
