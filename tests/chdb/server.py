"""Current ClickHouse (the chdb engine, 26.x) behind ClickHouse's HTTP interface.

chdb runs the ClickHouse engine inside this process and opens no listener, so
the store's own client cannot reach it. This server takes the requests that
client sends (the subset Channelshift uses: a statement in the body or in the
`query` parameter, `database`, `default_format`, RowBinary inserts with
ClickHouse's compressed blocks) and runs each statement on one chdb session,
returning its bytes, or the engine's error text with status 500 as a
ClickHouse server does. Every statement is the engine's to accept or refuse:
nothing is rewritten but an INSERT's data, which is read from a file by the
same format it was sent in.

    python server.py --port 8124 --data /tmp/chdb-data

It prints `ready <port>` once listening. One statement runs at a time.
"""

import argparse
import http.server
import os
import re
import struct
import tempfile
import threading
import urllib.parse

import lz4.block
from chdb import session

# Parameters of ClickHouse's HTTP interface that are not settings.
PROTOCOL_PARAMETERS = {"query", "database", "default_format", "decompress", "compress",
                       "query_id", "session_id", "role"}
INSERT_DATA = re.compile(
    r"^\s*INSERT\s+INTO\s+(?P<target>.+?)\s+FORMAT\s+(?P<format>\w+)\s*$",
    re.IGNORECASE | re.DOTALL)
# ClickHouse's compressed block: checksum (16 bytes), method, sizes.
LZ4_METHOD = 0x82
NONE_METHOD = 0x02


def decompress_blocks(data: bytes) -> bytes:
    """The data of ClickHouse's compressed blocks (`decompress=1`)."""
    out = bytearray()
    at = 0
    while at < len(data):
        method = data[at + 16]
        compressed, plain = struct.unpack_from("<II", data, at + 17)
        payload = data[at + 25:at + 16 + compressed]
        if method == LZ4_METHOD:
            out += lz4.block.decompress(payload, uncompressed_size=plain)
        elif method == NONE_METHOD:
            out += payload
        else:
            raise ValueError(f"compression method {method:#x} is not supported here")
        at += 16 + compressed
    return bytes(out)


class Engine:
    def __init__(self, data_dir: str):
        self.session = session.Session(data_dir)
        self.lock = threading.Lock()
        self.files = tempfile.mkdtemp(prefix="chdb-inserts-")

    def run(self, params: dict, body: bytes) -> bytes:
        with self.lock:
            self.session.query(f"USE {quote_identifier(params.get('database', 'default'))}")
            for name, value in params.items():
                if name not in PROTOCOL_PARAMETERS and not name.startswith("param_"):
                    self.session.query(f"SET {name} = {quote_value(value)}")
            fmt = params.get("default_format", "TabSeparated")
            if "query" in params and body:
                return self.insert(params["query"], body, params.get("decompress") == "1")
            statement = params.get("query") or body.decode("utf-8")
            return self.session.query(statement, fmt).bytes()

    def insert(self, statement: str, body: bytes, compressed: bool) -> bytes:
        match = INSERT_DATA.match(statement)
        if match is None:
            raise ValueError(f"an INSERT with data must end in FORMAT <name>: {statement!r}")
        data = decompress_blocks(body) if compressed else body
        path = os.path.join(self.files, "insert.bin")
        with open(path, "wb") as file:
            file.write(data)
        target, fmt = match.group("target"), match.group("format")
        structure = ""
        if fmt == "RowBinary":
            structure = ", " + quote_value(self.structure(target))
        self.session.query(
            f"INSERT INTO {target} SELECT * FROM file({quote_value(path)}, {fmt}{structure})")
        return b""

    def structure(self, target: str) -> str:
        """`name Type, …` of the columns an INSERT names, for plain RowBinary."""
        table, _, columns = target.partition("(")
        names = [name.strip().strip("`") for name in columns.rstrip(")").split(",")]
        described = self.session.query(f"DESCRIBE TABLE {table}", "TabSeparated").bytes()
        types = {}
        for line in described.decode().splitlines():
            fields = line.split("\t")
            types[fields[0]] = fields[1]
        return ", ".join(f"{name} {types[name]}" for name in names)


def quote_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def quote_value(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def handler(engine: Engine):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                body = bytearray()
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        self.rfile.readline()
                        return bytes(body)
                    body += self.rfile.read(size)
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length", "0")))

        def answer(self, status: int, body: bytes):
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Type", "text/plain; charset=UTF-8")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            # `/ping` and `/` answer as a server's do.
            self.answer(200, b"Ok.\n")

        def do_POST(self):
            url = urllib.parse.urlsplit(self.path)
            params = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
            body = self.read_body()
            try:
                result = engine.run(params, body)
            except Exception as error:  # the engine's refusal, as a server sends it
                message = str(error)
                if not message.startswith("Code:"):
                    message = f"Code: 0. DB::Exception: {message}"
                self.answer(500, message.encode() + b"\n")
                return
            self.answer(200, result)

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--data", required=True)
    args = parser.parse_args()
    engine = Engine(args.data)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), handler(engine))
    print(f"ready {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
