#!/usr/bin/env python3
"""Docker API proxy that runs `sam local invoke` containers in the host's network namespace.

Why: the local emulators listen on 127.0.0.1 only, and this workplace forbids traffic to
private-range addresses such as the docker0 bridge (172.17.0.1). SAM CLI 1.170 accepts
`--docker-network host` but does not apply it (it only skips connecting the container to a
network named "host"), so its container stays on the bridge and cannot see 127.0.0.1.

This proxy sits between SAM and dockerd (SAM reads DOCKER_HOST) and rewrites one request,
`POST /containers/create`, for containers started from the Lambda Runtime Interface
Emulator (entrypoint /var/rapid/aws-lambda-rie):
  * HostConfig.NetworkMode = "host"; port bindings are dropped (they mean nothing there);
  * the emulator is told to listen on 127.0.0.1:<the host port SAM picked>, where SAM sends
    the invoke, and to serve the Runtime API on another free loopback port;
  * the variables given with --env K=V are added to the container's environment. SAM only
    passes variables that the template declares, and the SDK endpoint overrides
    (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_DYNAMODB) must not be declared in the template.
  * image builds (`POST /build`) run with networkmode=none: SAM's Dockerfile only moves a file.
Every other request and all responses (including attach streams) pass through unchanged.

Usage: sam-local-hostnet.py --listen PATH.sock [--upstream /var/run/docker.sock] [--env K=V]...
Linux only (a host network namespace shared with Docker); stop it with SIGTERM.
"""

import argparse
import json
import os
import signal
import socket
import sys
import threading

RIE = "/var/rapid/aws-lambda-rie"


def free_loopback_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rewrite_create(body, extra_env):
    spec = json.loads(body)
    entry = spec.get("Entrypoint") or []
    if not entry or entry[0] != RIE:
        return body
    host = spec.setdefault("HostConfig", {})
    bindings = host.pop("PortBindings", None) or {}
    ports = bindings.get("8080/tcp") or [{}]
    port = ports[0].get("HostPort")
    if not port:
        raise ValueError("SAM did not bind the emulator port 8080/tcp")
    host["NetworkMode"] = "host"
    spec.pop("ExposedPorts", None)
    spec["Entrypoint"] = entry + [
        "--runtime-interface-emulator-address", f"127.0.0.1:{port}",
        "--runtime-api-address", f"127.0.0.1:{free_loopback_port()}",
    ]
    spec["Env"] = (spec.get("Env") or []) + list(extra_env)
    print(f"sam-local-hostnet: container on host network, emulator at 127.0.0.1:{port}", file=sys.stderr)
    return json.dumps(spec).encode()


class Reader:
    """Buffered reads from a socket, for parsing HTTP/1.1 request framing."""

    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.buf += data

    def until(self, marker):
        while marker not in self.buf:
            self.fill()
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def exactly(self, n):
        while len(self.buf) < n:
            self.fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def pipe(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
            try:
                s.shutdown(how)
            except OSError:
                pass


def serve(client, upstream_path, extra_env):
    upstream = socket.socket(socket.AF_UNIX)
    upstream.connect(upstream_path)
    threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
    reader = Reader(client)
    try:
        while True:
            head = reader.until(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = [l for l in lines[1:] if l]
            lower = {h.split(":", 1)[0].strip().lower(): h.split(":", 1)[1].strip() for h in headers}
            if "chunked" in lower.get("transfer-encoding", "").lower():
                body = b""
                while True:
                    size = int(reader.until(b"\r\n").strip().split(b";")[0], 16)
                    if size == 0:
                        reader.until(b"\r\n")  # no trailers from docker clients
                        break
                    body += reader.exactly(size)
                    reader.exactly(2)
            else:
                body = reader.exactly(int(lower.get("content-length", "0")))
            path = target.split("?")[0]
            if method == "POST" and path.endswith("/containers/create"):
                body = rewrite_create(body, extra_env)
            elif method == "POST" and path.endswith("/build") and "networkmode=" not in target:
                # SAM's image build only moves a file (RUN mv/chmod): no network at all, so it
                # also works on a dockerd started without a bridge.
                target += ("&" if "?" in target else "?") + "networkmode=none"
                lines[0] = f"{method} {target} {lines[0].split(' ', 2)[2]}"
            kept = [h for h in headers if h.split(":", 1)[0].strip().lower() not in ("content-length", "transfer-encoding")]
            if body or method in ("POST", "PUT"):
                kept.append(f"Content-Length: {len(body)}")
            upstream.sendall(("\r\n".join([lines[0]] + kept) + "\r\n\r\n").encode("latin-1") + body)
            if "upgrade" in lower.get("connection", "").lower():
                # attach/exec hijack the connection: raw bytes from here on.
                if reader.buf:
                    upstream.sendall(reader.buf)
                pipe(client, upstream)
                return
    except (EOFError, OSError):
        pass
    except Exception as e:  # a bug here must not hang SAM: close the connection loudly
        print(f"sam-local-hostnet: {e!r}", file=sys.stderr)
    finally:
        try:
            upstream.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", required=True)
    ap.add_argument("--upstream", default="/var/run/docker.sock")
    ap.add_argument("--env", action="append", default=[], help="K=V added to Lambda containers")
    args = ap.parse_args()
    if os.path.exists(args.listen):
        os.unlink(args.listen)
    server = socket.socket(socket.AF_UNIX)
    server.bind(args.listen)
    server.listen(64)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"sam-local-hostnet: {args.listen} -> {args.upstream}", file=sys.stderr, flush=True)
    try:
        while True:
            client, _ = server.accept()
            threading.Thread(target=serve, args=(client, args.upstream, args.env), daemon=True).start()
    finally:
        os.unlink(args.listen)


if __name__ == "__main__":
    main()
