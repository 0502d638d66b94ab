#!/usr/bin/env python3
# aioquic interop peer for quicket: an echo server and a resuming 0-RTT client on ALPN "echo", and
# their HTTP/3 counterparts on ALPN "h3".
#
# Our own program, written on aioquic's public API (aioquic.asyncio serve/connect,
# QuicConnectionProtocol's events and aioquic.h3.connection.H3Connection; aioquic does its own TLS
# 1.3 in Python, with cryptography for the primitives). Same command line and JSON lines as the
# quic-go peer (test/peers/quic-go/README.md, test/peers/quic-go/h3.go):
#
#   server -addr 127.0.0.1:4433 -cert server.pem -key server-key.pem [-duration 10m] [-max-conns 0]
#          [-no-0rtt] [-rotate-after N]
#   client -addr 127.0.0.1:4433 -ca ca.pem [-servername localhost] [-n 10] [-size 1024]
#          [-timeout 10s] [-ticket-wait 2s] [-gap-min-ms 0] [-gap-max-ms 0] [-seed 0]
#   h3-server -addr 127.0.0.1:0 -cert server.pem -key server-key.pem [-duration 60s]
#   h3-client -addr 127.0.0.1:PORT -ca ca.pem [-servername localhost] [-n 5] [-size 1024]
#             [-timeout 10s]
#
# Output is one JSON object a line on stdout; diagnostics go to stderr. Every loop is bounded in
# count and time; the program only talks to the address it is given. Run it through
# build-peers/aioquic-python (test/peers/aioquic/build.sh), which sets PYTHONPATH to the aioquic
# built there.
import asyncio
import json
import os
import random
import re
import signal
import ssl
import sys
import time

from aioquic.asyncio import connect, serve
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3 import events as h3_events
from aioquic.h3.connection import H3_ALPN, ErrorCode as H3ErrorCode, H3Connection
from aioquic.quic import events
from aioquic.quic.configuration import QuicConfiguration

ALPN = "echo"


def emit(value):
    sys.stdout.write(json.dumps(value, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def fatal(message):
    sys.stderr.write("aioquic-peer: %s\n" % message)
    sys.stderr.flush()
    os._exit(2)


# ---- flags (Go's flag package spelling: -name value, -name=value, --name value) ----------------

def parse_duration(text):
    """Seconds from a Go duration ("10s", "1m30s", "250ms") or a bare number of seconds."""
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    total, rest = 0.0, text
    while rest:
        m = re.match(r"(\d+(?:\.\d+)?)(ms|s|m|h)", rest)
        if not m:
            raise ValueError("bad duration %r" % text)
        total += float(m.group(1)) * units[m.group(2)]
        rest = rest[m.end():]
    return total


def parse_flags(args, spec):
    values = {name: default for name, (kind, default) in spec.items()}
    i = 0
    while i < len(args):
        m = re.fullmatch(r"--?([a-z0-9-]+)(?:=(.*))?", args[i])
        if not m or m.group(1) not in spec:
            fatal("unknown flag %s (flags: %s)" % (args[i], " ".join("-" + f for f in spec)))
        name, raw = m.group(1), m.group(2)
        kind = spec[name][0]
        if kind == "bool":
            values[name] = raw is None or raw == "true"
            i += 1
            continue
        if raw is None:
            if i + 1 >= len(args):
                fatal("flag -%s needs a value" % name)
            i += 1
            raw = args[i]
        try:
            values[name] = int(raw) if kind == "int" else parse_duration(raw) if kind == "duration" else raw
        except ValueError as err:
            fatal("flag -%s: %s" % (name, err))
        i += 1
    return values


def split_addr(addr):
    host, sep, port = addr.rpartition(":")
    if not sep:
        fatal("address %s has no port" % addr)
    return host.strip("[]"), int(port)


def close_error(event, established):
    """The JSON `error` for a ConnectionTerminated event, or None for a clean close."""
    if not established:
        return "handshake: error 0x%x %s" % (event.error_code, event.reason_phrase)
    if event.error_code != 0:
        return "closed with error 0x%x %s" % (event.error_code, event.reason_phrase)
    return None


# ---- server --------------------------------------------------------------------------------------

class TicketStore:
    """Server-side tickets, single use (as aioquic's own examples keep them); clear() forgets all."""

    def __init__(self):
        self.tickets = {}

    def add(self, ticket):
        self.tickets[ticket.ticket] = ticket

    def pop(self, label):
        return self.tickets.pop(label, None)

    def clear(self):
        self.tickets.clear()


async def run_server(args):
    flags = parse_flags(args, {
        "addr": ("string", "127.0.0.1:4433"),
        "cert": ("string", ""),
        "key": ("string", ""),
        "duration": ("duration", 600.0),
        "max-conns": ("int", 0),
        "no-0rtt": ("bool", False),
        "rotate-after": ("int", 0),
    })
    if not flags["cert"] or not flags["key"]:
        fatal("server: -cert and -key are required")
    config = QuicConfiguration(is_client=False, alpn_protocols=[ALPN], max_data=16 * 1024 * 1024,
                               max_stream_data=4 * 1024 * 1024, idle_timeout=30.0)
    config.load_cert_chain(flags["cert"], flags["key"])
    store = TicketStore()
    loop = asyncio.get_running_loop()
    stopped = loop.create_future()
    totals = {"connections": 0, "handshakes": 0, "resumed": 0, "earlyData": 0, "failed": 0}
    state = {"seq": 0, "finished": 0, "open": set()}

    def stop():
        if not stopped.done():
            stopped.set_result(None)

    class EchoServer(QuicConnectionProtocol):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            state["seq"] += 1
            totals["connections"] += 1
            self.id = state["seq"]
            self.established = False
            self.resumed = False
            self.early_data = False
            self.done = False
            state["open"].add(self)

        def quic_event_received(self, event):
            if isinstance(event, events.HandshakeCompleted):
                self.established = True
                self.resumed = event.session_resumed
                # The server accepted the client's early_data (aioquic's TLS decided to decrypt 0-RTT).
                self.early_data = event.early_data_accepted
            elif isinstance(event, events.StreamDataReceived):
                if event.stream_id % 4 == 0:  # client-initiated bidirectional: echo it
                    self._quic.send_stream_data(event.stream_id, event.data, end_stream=event.end_stream)
            elif isinstance(event, events.ConnectionTerminated):
                self.finish(close_error(event, self.established))

        def finish(self, error):
            if self.done:
                return
            self.done = True
            state["open"].discard(self)
            report = {"conn": self.id, "resumed": self.resumed, "earlyData": self.early_data}
            if error:
                report["error"] = error
                totals["failed"] += 1
            else:
                totals["handshakes"] += 1
                totals["resumed"] += int(self.resumed)
                totals["earlyData"] += int(self.early_data)
            emit(report)
            state["finished"] += 1
            if flags["rotate-after"] > 0 and state["finished"] == flags["rotate-after"]:
                # Tickets issued so far can no longer be opened: their holders get a full handshake.
                store.clear()
                emit({"rotated": True})
            if flags["max-conns"] > 0 and state["finished"] >= flags["max-conns"]:
                stop()

    host, port = split_addr(flags["addr"])
    server = await serve(host, port, configuration=config, create_protocol=EchoServer,
                         session_ticket_fetcher=store.pop,
                         # Without a handler aioquic issues no tickets; -no-0rtt issues none.
                         session_ticket_handler=None if flags["no-0rtt"] else store.add)
    sockname = server._transport.get_extra_info("sockname")
    emit({"listening": "%s:%d" % (sockname[0], sockname[1])})
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    try:
        await asyncio.wait_for(asyncio.shield(stopped), flags["duration"])
    except asyncio.TimeoutError:
        pass
    for protocol in list(state["open"]):
        protocol.close(error_code=0, reason_phrase="server stopping")
        protocol.finish("server stopping" if not protocol.established else None)
    emit({"summary": True, **totals})
    server.close()


# ---- client (raw) --------------------------------------------------------------------------------

class EchoClient(QuicConnectionProtocol):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.handshake = asyncio.get_running_loop().create_future()
        self.echo = bytearray()
        self.echo_done = asyncio.get_running_loop().create_future()
        self.stream_id = None
        self.terminated = None

    def quic_event_received(self, event):
        if isinstance(event, events.HandshakeCompleted):
            if not self.handshake.done():
                self.handshake.set_result(event)
        elif isinstance(event, events.StreamDataReceived):
            if event.stream_id == self.stream_id:
                self.echo += event.data
                if event.end_stream and not self.echo_done.done():
                    self.echo_done.set_result(None)
        elif isinstance(event, events.ConnectionTerminated):
            self.terminated = event
            for future in (self.handshake, self.echo_done):
                if not future.done():
                    future.set_exception(ConnectionError(
                        "connection closed: error 0x%x %s" % (event.error_code, event.reason_phrase)))
        super().quic_event_received(event)


async def one_connection(i, host, port, flags, session):
    """
    One connection: resumes from `session` (aioquic's SessionTicket) when given, and writes the
    message on a stream before the first flight goes out, so it rides 0-RTT when the ticket
    allows. Reads the echo, waits up to -ticket-wait for a new ticket, then closes with code 0.
    used0rtt is the server's answer to early_data (aioquic's HandshakeCompleted.early_data_accepted);
    when it is refused aioquic resends the lost 0-RTT stream bytes in 1-RTT packets.
    """
    report = {"i": i, "resumed": False, "used0rtt": False, "ok": False, "cached": session is not None,
              "ticket0rtt": bool(session is not None and session.max_early_data_size),
              "rejected0rtt": False, "gotTicket": False, "ms": 0}
    message = os.urandom(flags["size"])
    tickets = []
    got_ticket = asyncio.Event()

    def on_ticket(ticket):
        tickets.append(ticket)
        got_ticket.set()

    config = QuicConfiguration(is_client=True, alpn_protocols=[ALPN], server_name=flags["servername"],
                               max_data=16 * 1024 * 1024, max_stream_data=4 * 1024 * 1024,
                               idle_timeout=30.0, session_ticket=session)
    if flags["ca"]:
        config.load_verify_locations(flags["ca"])
    config.verify_mode = ssl.CERT_REQUIRED
    start = time.monotonic()

    async def run():
        async with connect(host, port, configuration=config, create_protocol=EchoClient,
                           session_ticket_handler=on_ticket, wait_connected=False) as client:
            # connect() has queued the ClientHello but sent nothing yet when wait_connected=False:
            # the stream data below goes out in the same flight, as 0-RTT if the ticket allows.
            client.stream_id = client._quic.get_next_available_stream_id()
            client._quic.send_stream_data(client.stream_id, message, end_stream=True)
            client.transmit()
            hs = await client.handshake
            report["resumed"] = hs.session_resumed
            report["used0rtt"] = bool(report["ticket0rtt"] and hs.early_data_accepted)
            report["rejected0rtt"] = bool(report["ticket0rtt"] and not hs.early_data_accepted)
            await client.echo_done
            report["ms"] = round((time.monotonic() - start) * 1000, 3)
            if bytes(client.echo) != message:
                raise ValueError("echo mismatch: sent %d bytes, got %d" % (len(message), len(client.echo)))
            report["ok"] = True
            if not tickets:
                try:
                    await asyncio.wait_for(got_ticket.wait(), flags["ticket-wait"])
                except asyncio.TimeoutError:
                    pass
            report["gotTicket"] = bool(tickets)
            client.close(error_code=0)

    try:
        await asyncio.wait_for(run(), flags["timeout"])
    except asyncio.TimeoutError:
        report["ok"] = False
        report["error"] = "timeout"
    except Exception as err:  # the line says what failed; the summary counts it
        report["ok"] = False
        report["error"] = "%s: %s" % (type(err).__name__, err)
    return report, (tickets[-1] if tickets else None)


async def run_client(args):
    flags = parse_flags(args, {
        "addr": ("string", "127.0.0.1:4433"),
        "ca": ("string", ""),
        "servername": ("string", "localhost"),
        "n": ("int", 10),
        "size": ("int", 1024),
        "timeout": ("duration", 10.0),
        "ticket-wait": ("duration", 2.0),
        "gap-min-ms": ("int", 0),
        "gap-max-ms": ("int", 0),
        "seed": ("int", 0),
    })
    if not 1 <= flags["n"] <= 100000:
        fatal("client: -n must be 1..100000")
    if not 0 <= flags["size"] <= 64 * 1024 * 1024:
        fatal("client: -size must be 0..64 MiB")
    if not 0 <= flags["gap-min-ms"] <= flags["gap-max-ms"] <= 600000:
        fatal("client: need 0 <= -gap-min-ms <= -gap-max-ms <= 600000")
    host, port = split_addr(flags["addr"])
    seed = flags["seed"] or int(time.time() * 1000)
    rng = random.Random(seed)  # for the pauses only
    session = None
    total = {"ok": 0, "failed": 0, "resumed": 0, "used0rtt": 0, "cached": 0, "rejected0rtt": 0}
    for i in range(flags["n"]):
        gap = 0
        if i > 0 and flags["gap-max-ms"] > 0:
            gap = rng.randint(flags["gap-min-ms"], flags["gap-max-ms"])
            await asyncio.sleep(gap / 1000)
        report, fresh = await one_connection(i, host, port, flags, session)
        if fresh is not None:
            session = fresh  # resume from the newest ticket
        report["gapMs"] = gap
        emit(report)
        total["ok" if report["ok"] else "failed"] += 1
        for key in ("resumed", "used0rtt", "cached", "rejected0rtt"):
            total[key] += int(bool(report[key]))
    emit({"summary": True, "n": flags["n"], **total, "seed": seed})
    return 1 if total["failed"] else 0


# ---- HTTP/3 (ALPN h3, aioquic.h3.connection.H3Connection) ---------------------------------------
#
# Same as the quic-go peer's h3 modes (test/peers/quic-go/h3.go): GET /bytes/N answers N bytes of
# a fixed pattern, byte i being (i*31+7) mod 256, which both sides check without a digest.

PATTERN_PERIOD = bytes((i * 31 + 7) & 255 for i in range(256))  # 31*256 = 0 mod 256: period 256


def pattern(length):
    whole, part = divmod(length, 256)
    return PATTERN_PERIOD * whole + PATTERN_PERIOD[:part]


def header(headers, name):
    for key, value in headers:
        if key == name:
            return value.decode("utf-8", "replace")
    return None


async def run_h3_server(args):
    flags = parse_flags(args, {
        "addr": ("string", "127.0.0.1:0"),
        "cert": ("string", ""),
        "key": ("string", ""),
        "duration": ("duration", 60.0),
    })
    if not flags["cert"] or not flags["key"]:
        fatal("h3-server: -cert and -key are required")
    config = QuicConfiguration(is_client=False, alpn_protocols=H3_ALPN, max_data=16 * 1024 * 1024,
                               max_stream_data=4 * 1024 * 1024, idle_timeout=30.0)
    config.load_cert_chain(flags["cert"], flags["key"])
    store = TicketStore()
    loop = asyncio.get_running_loop()
    stopped = loop.create_future()
    state = {"requests": 0, "open": set()}

    def stop():
        if not stopped.done():
            stopped.set_result(None)

    class H3Server(QuicConnectionProtocol):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.h3 = None
            self.handshake = loop.create_future()
            self.tasks = set()
            state["open"].add(self)

        def quic_event_received(self, event):
            if isinstance(event, events.ProtocolNegotiated):
                # Before any 0-RTT stream data of the connection is handed over.
                self.h3 = H3Connection(self._quic)
            elif isinstance(event, events.HandshakeCompleted):
                if not self.handshake.done():
                    self.handshake.set_result(event)
            elif isinstance(event, events.ConnectionTerminated):
                state["open"].discard(self)
                if not self.handshake.done():
                    self.handshake.set_exception(ConnectionError("closed before the handshake completed"))
                    self.handshake.exception()  # retrieved: no "never retrieved" warning
            if self.h3 is not None:
                for h3_event in self.h3.handle_event(event):
                    if isinstance(h3_event, h3_events.HeadersReceived):
                        task = loop.create_task(self.answer(h3_event.stream_id, h3_event.headers))
                        self.tasks.add(task)
                        task.add_done_callback(self.tasks.discard)

        async def answer(self, stream_id, headers):
            path = header(headers, b":path") or ""
            method = header(headers, b":method")
            m = re.fullmatch(r"/bytes/(\d+)", path)
            size = int(m.group(1)) if m else -1
            if method != "GET" or not m or size > 64 * 1024 * 1024:
                status = 404 if not path.startswith("/bytes/") else 400
                self.h3.send_headers(stream_id, [(b":status", str(status).encode())], end_stream=True)
                self.transmit()
                return
            state["requests"] += 1
            report = {"request": state["requests"]}
            # As the quic-go peer: the line (and the answer) once the handshake is complete, so it
            # can say whether the connection resumed and whether its 0-RTT was accepted.
            try:
                hs = await asyncio.wait_for(asyncio.shield(self.handshake), 10.0)
                report["resumed"] = hs.session_resumed
                report["used0rtt"] = hs.early_data_accepted
            except asyncio.TimeoutError:
                report["error"] = "handshake timeout"
            except ConnectionError as err:
                report["error"] = str(err)
            emit(report)
            if "error" in report:
                return
            self.h3.send_headers(stream_id, [(b":status", b"200"), (b"content-length", str(size).encode())])
            self.h3.send_data(stream_id, pattern(size), end_stream=True)
            self.transmit()

    host, port = split_addr(flags["addr"])
    server = await serve(host, port, configuration=config, create_protocol=H3Server,
                         session_ticket_fetcher=store.pop, session_ticket_handler=store.add)
    sockname = server._transport.get_extra_info("sockname")
    emit({"listening": "%s:%d" % (sockname[0], sockname[1])})
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    try:
        await asyncio.wait_for(asyncio.shield(stopped), flags["duration"])
    except asyncio.TimeoutError:
        pass
    for protocol in list(state["open"]):
        protocol.close(error_code=H3ErrorCode.H3_NO_ERROR, reason_phrase="server stopping")
    server.close()


class H3Client(QuicConnectionProtocol):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        loop = asyncio.get_running_loop()
        # As aioquic's own http3 example: the H3 connection (control and QPACK streams) exists
        # from the start, so its SETTINGS go out in the first flight alongside the request.
        self.h3 = H3Connection(self._quic)
        self.handshake = loop.create_future()
        self.response = loop.create_future()
        self.stream_id = None
        self.status = None
        self.body = bytearray()

    def quic_event_received(self, event):
        if isinstance(event, events.HandshakeCompleted):
            if not self.handshake.done():
                self.handshake.set_result(event)
        elif isinstance(event, events.ConnectionTerminated):
            for future in (self.handshake, self.response):
                if not future.done():
                    future.set_exception(ConnectionError(
                        "connection closed: error 0x%x %s" % (event.error_code, event.reason_phrase)))
                    future.exception()
        for h3_event in self.h3.handle_event(event):
            if getattr(h3_event, "stream_id", None) != self.stream_id:
                continue
            if isinstance(h3_event, h3_events.HeadersReceived):
                if self.status is None:
                    self.status = int(header(h3_event.headers, b":status") or 0)
            elif isinstance(h3_event, h3_events.DataReceived):
                self.body += h3_event.data
            if getattr(h3_event, "stream_ended", False) and not self.response.done():
                self.response.set_result(None)
        super().quic_event_received(event)


async def one_h3_connection(i, host, port, flags, session):
    """
    One connection with one GET /bytes/<size>: resumes from `session` when given and queues the
    request before the first flight goes out (connect(wait_connected=False)), so the GET rides
    0-RTT when the ticket allows. used0rtt as in the raw client: the ticket allowed early data and
    the server accepted it (on a rejection aioquic resends the request in 1-RTT packets).
    """
    report = {"i": i, "resumed": False, "used0rtt": False}
    ticket0rtt = bool(session is not None and session.max_early_data_size)
    tickets = []
    got_ticket = asyncio.Event()

    def on_ticket(ticket):
        tickets.append(ticket)
        got_ticket.set()

    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name=flags["servername"],
                               max_data=16 * 1024 * 1024, max_stream_data=4 * 1024 * 1024,
                               idle_timeout=30.0, session_ticket=session)
    if flags["ca"]:
        config.load_verify_locations(flags["ca"])
    config.verify_mode = ssl.CERT_REQUIRED
    ok = False

    async def run():
        nonlocal ok
        async with connect(host, port, configuration=config, create_protocol=H3Client,
                           session_ticket_handler=on_ticket, wait_connected=False) as client:
            client.stream_id = client._quic.get_next_available_stream_id()
            client.h3.send_headers(client.stream_id, [
                (b":method", b"GET"), (b":scheme", b"https"), (b":authority", flags["addr"].encode()),
                (b":path", ("/bytes/%d" % flags["size"]).encode()), (b"user-agent", b"quicket-aioquic-peer"),
            ], end_stream=True)
            client.transmit()
            try:
                await client.response
            finally:
                if client.handshake.done() and not client.handshake.exception():
                    hs = client.handshake.result()
                    report["resumed"] = hs.session_resumed
                    report["used0rtt"] = bool(ticket0rtt and hs.early_data_accepted)
            report["status"] = client.status
            report["bytes"] = len(client.body)
            ok = client.status == 200 and bytes(client.body) == pattern(flags["size"])
            # Keep the connection until its ticket arrived, so the next one can resume.
            if not tickets:
                try:
                    await asyncio.wait_for(got_ticket.wait(), 2.0)
                except asyncio.TimeoutError:
                    pass
            client.close(error_code=H3ErrorCode.H3_NO_ERROR)

    try:
        await asyncio.wait_for(run(), flags["timeout"])
    except asyncio.TimeoutError:
        ok = False
        report["error"] = "timeout"
    except Exception as err:
        ok = False
        report["error"] = "%s: %s" % (type(err).__name__, err)
    report["ok"] = ok
    return report, (tickets[-1] if tickets else None)


async def run_h3_client(args):
    flags = parse_flags(args, {
        "addr": ("string", "127.0.0.1:4433"),
        "ca": ("string", ""),
        "servername": ("string", "localhost"),
        "n": ("int", 5),
        "size": ("int", 1024),
        "timeout": ("duration", 10.0),
    })
    if not 1 <= flags["n"] <= 10000:
        fatal("h3-client: -n must be 1..10000")
    if not 0 <= flags["size"] <= 64 * 1024 * 1024:
        fatal("h3-client: -size must be 0..64 MiB")
    host, port = split_addr(flags["addr"])
    session = None
    failed = 0
    for i in range(flags["n"]):
        report, fresh = await one_h3_connection(i, host, port, flags, session)
        if fresh is not None:
            session = fresh  # resume from the newest ticket
        if not report["ok"]:
            failed += 1
        emit(report)
    emit({"summary": True, "connections": flags["n"], "failed": failed})
    return 1 if failed else 0

MODES = ("server", "client", "h3-server", "h3-client")


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in MODES:
        fatal("usage: peer.py server|client|h3-server|h3-client [flags]")
    mode, rest = sys.argv[1], sys.argv[2:]
    if mode == "server":
        asyncio.run(run_server(rest))
        return 0
    if mode == "h3-server":
        asyncio.run(run_h3_server(rest))
        return 0
    if mode == "h3-client":
        return asyncio.run(run_h3_client(rest))
    return asyncio.run(run_client(rest))


if __name__ == "__main__":
    sys.exit(main())
