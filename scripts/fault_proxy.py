"""The fault proxy: a TCP proxy in front of an emulator that can take it away and bring it
back on the same address with its data intact, which stopping the emulator cannot do (moto
keeps its data in memory). The one copy that both the Rust tests (tests/common/proxy.rs) and
`make demo` (scripts/demo.py) run, as a child process:

    python scripts/fault_proxy.py --upstream 127.0.0.1:5000 [--listen PORT]

It prints `listening <port>` once it accepts connections, then reads one mode per line on
stdin and answers `ok <mode>` when that mode is in force:

  up     forward to the upstream;
  down   accept and close at once: every request fails fast;
  stall  accept and never answer: every request hangs until the client gives up.

Every switch cuts every open connection before it is answered, so a client's pooled
connections obey at once, and every connection accepted after the answer sees the new mode.
It exits when stdin closes, so it never outlives the process that started it. Standard
library only: it runs on any of the pinned venvs' Python.
"""
import argparse
import asyncio
import subprocess
import sys
from pathlib import Path

MODES = ("up", "down", "stall")


class Proxy:
    def __init__(self, upstream):
        self.upstream = upstream
        self.mode = "up"
        # Every open connection's writers (the client's, and the upstream's once connected).
        self.open = set()

    async def handle(self, reader, writer):
        # Registered before the first await, so a switch from here on cuts this connection.
        mine = {writer}
        self.open.add(writer)
        try:
            if self.mode == "up":
                await self.forward(reader, writer, mine)
            elif self.mode == "stall":
                await writer.wait_closed()
        except OSError:  # a client that reset its connection: nothing to do
            pass
        finally:
            for w in mine:
                w.transport.abort()
            self.open.difference_update(mine)

    async def forward(self, reader, writer, mine):
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            return
        mine.add(up_writer)
        self.open.add(up_writer)
        if writer.transport.is_closing():  # cut while connecting
            return

        async def pipe(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
                if dst.can_write_eof():
                    dst.write_eof()  # a half-close is passed on, as the other side sent it
            except OSError:  # one side broke: so does the connection, both ways
                for w in mine:
                    w.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def switch(self, mode):
        """Puts `mode` in force and cuts every open connection; returns once they are closed."""
        self.mode = mode
        cut = list(self.open)
        self.open.clear()
        for w in cut:
            w.transport.abort()
        # abort() closes the socket on a later turn of the loop; wait for that, so the
        # answer to the switch really comes after the cut.
        await asyncio.gather(*(w.wait_closed() for w in cut), return_exceptions=True)


async def serve(listen, upstream):
    proxy = Proxy(upstream)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", listen)
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    control = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(control), sys.stdin)
    while line := await control.readline():
        mode = line.decode().strip()
        if mode not in MODES:
            print(f"error unknown mode {mode!r} (expected {', '.join(MODES)})", flush=True)
            continue
        await proxy.switch(mode)
        print(f"ok {mode}", flush=True)
    server.close()


class FaultProxy:
    """A fault proxy child process and its control channel (the demo's handle on it)."""

    def __init__(self, upstream):
        self.process = subprocess.Popen(
            [sys.executable, Path(__file__).resolve(), "--upstream", f"{upstream[0]}:{upstream[1]}"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.port = int(self._answer("listening"))
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def _answer(self, word):
        line = self.process.stdout.readline()
        if not line.startswith(f"{word} "):
            raise RuntimeError(f"fault proxy: expected {word!r}, got {line!r} (exit code {self.process.poll()})")
        return line.split(" ", 1)[1].strip()

    def set(self, mode):
        """Switches to `mode` ("up", "down", "stall"); returns once it is in force."""
        self.process.stdin.write(f"{mode}\n")
        self.process.stdin.flush()
        self._answer("ok")

    def close(self):
        """Stops it: closing its stdin ends it; a kill if that has not within 10 s."""
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="HOST:PORT to forward to")
    parser.add_argument("--listen", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    args = parser.parse_args()
    host, port = args.upstream.rsplit(":", 1)
    asyncio.run(serve(args.listen, (host, int(port))))


if __name__ == "__main__":
    main()
