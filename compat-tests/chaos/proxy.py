"""A fault-injecting TCP proxy for the chaos harness (asyncio, on its own thread).

One listening port per directed pair X->Y: node X's TRLMDB_PEERS names that
port, and the proxy forwards to Y's real port once it is known (set_target;
until then, and while Y is down, it accepts and closes at once). A connection
through X->Y carries X->Y bytes from client to server and Y->X bytes back, so
every fault is stated per direction of a pair of nodes and applies to the
connections of both ports of the pair.

Faults of a direction X->Y:
  pass        forward as they come
  drop        black hole: read and discard; TCP stays up, nothing arrives.
              When it ends the stream resumes with a hole in it
  delay MS    each chunk is forwarded MS milliseconds after it was read
  partition   stall: nothing is read from X's side (TCP backpressure, no loss),
              and new connections of the pair are refused; when it ends the
              buffered bytes flow on (unless a node gave up and closed)
Full partition = partition of both directions. reset(pair) closes every
connection of the pair abruptly (RST).
"""

import asyncio
import socket
import struct
import threading
import time


class Link:
    """The state of one direction X->Y."""

    def __init__(self):
        self.mode = "pass"
        self.delay_ms = 0
        self.resume = None  # asyncio.Event set when a partition ends

    def describe(self):
        return "delay %dms" % self.delay_ms if self.mode == "delay" else self.mode


class Proxy:
    def __init__(self, names, log=None):
        self.names = list(names)
        self.log = log or (lambda msg: None)
        self.links = {(a, b): Link() for a in self.names for b in self.names if a != b}
        self.targets = {}  # node -> real port (None while down)
        self.ports = {}  # (x, y) -> proxy port for x dialing y
        self.conns = set()
        self.stats = {"connections": 0, "refused": 0, "reset": 0, "bytes": 0, "dropped_bytes": 0}
        self.loop = asyncio.new_event_loop()
        self._servers = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._ready = threading.Event()
        self._thread.start()
        self._ready.wait()
        self.call(self._listen_all)

    # --- thread plumbing ----------------------------------------------------
    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()

    def call(self, coro_fn, *args, timeout=10):
        """Runs coro_fn(*args) on the proxy's loop; returns its result."""
        fut = asyncio.run_coroutine_threadsafe(coro_fn(*args), self.loop)
        return fut.result(timeout)

    def close(self):
        async def shutdown():
            for s in self._servers:
                s.close()
            for c in list(self.conns):
                c.abort()
        try:
            self.call(shutdown)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)

    # --- control (from the driver's thread) -----------------------------------
    def port(self, x, y):
        return self.ports[(x, y)]

    def set_target(self, node, port):
        async def do():
            self.targets[node] = port
        self.call(do)

    def set_link(self, x, y, mode, delay_ms=0):
        async def do():
            link = self.links[(x, y)]
            was_partition = link.mode == "partition"
            link.mode = mode
            link.delay_ms = delay_ms
            if mode == "partition" and not was_partition:
                link.resume = asyncio.Event()
            if was_partition and mode != "partition":
                link.resume.set()
                link.resume = None
            self.log("proxy: %s->%s %s" % (x, y, link.describe()))
        self.call(do)

    def reset(self, x, y):
        async def do():
            n = 0
            for c in list(self.conns):
                if {c.a, c.b} == {x, y}:
                    c.abort()
                    n += 1
            self.stats["reset"] += n
            self.log("proxy: reset %s-%s (%d connections)" % (x, y, n))
            return n
        return self.call(do)

    def heal_all(self):
        for (x, y), link in self.links.items():
            if link.mode != "pass":
                self.set_link(x, y, "pass")

    def describe(self):
        return ", ".join("%s->%s %s" % (x, y, l.describe())
                         for (x, y), l in sorted(self.links.items()) if l.mode != "pass")

    # --- the loop's side -----------------------------------------------------
    async def _listen_all(self):
        for x in self.names:
            for y in self.names:
                if x == y:
                    continue
                server = await asyncio.start_server(
                    lambda r, w, x=x, y=y: self._accept(r, w, x, y), "127.0.0.1", 0)
                self._servers.append(server)
                self.ports[(x, y)] = server.sockets[0].getsockname()[1]

    def _refused(self, x, y):
        if self.targets.get(y) is None:
            return True
        return self.links[(x, y)].mode == "partition" or self.links[(y, x)].mode == "partition"

    async def _accept(self, reader, writer, x, y):
        if self._refused(x, y):
            self.stats["refused"] += 1
            _abort(writer)
            return
        try:
            ur, uw = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", self.targets[y]), 5)
        except (OSError, asyncio.TimeoutError):
            self.stats["refused"] += 1
            _abort(writer)
            return
        self.stats["connections"] += 1
        conn = Conn(self, x, y, writer, uw)
        self.conns.add(conn)
        await conn.run(reader, ur)
        self.conns.discard(conn)


def _abort(writer):
    """Closes with RST (SO_LINGER 0), as a crashed host or a middlebox would."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


class Conn:
    """One proxied connection: a client of x dialing y."""

    def __init__(self, proxy, x, y, client_w, server_w):
        self.proxy, self.a, self.b = proxy, x, y
        self.cw, self.sw = client_w, server_w
        self.tasks = []

    def abort(self):
        _abort(self.cw)
        _abort(self.sw)
        for t in self.tasks:
            t.cancel()

    async def run(self, client_r, server_r):
        self.tasks = [asyncio.ensure_future(self._pump(client_r, self.sw, self.a, self.b)),
                      asyncio.ensure_future(self._pump(server_r, self.cw, self.b, self.a))]
        done, pending = await asyncio.wait(self.tasks, return_when=asyncio.FIRST_COMPLETED)
        # One side ended: end the other one too, as a plain TCP relay would
        # after a close (a half-closed session is of no use to the nodes).
        for t in pending:
            t.cancel()
        for w in (self.cw, self.sw):
            try:
                w.close()
            except Exception:
                pass

    async def _pump(self, reader, writer, src, dst):
        link = self.proxy.links[(src, dst)]
        queue = asyncio.Queue()
        sender = asyncio.ensure_future(self._send(queue, writer))
        try:
            while True:
                if link.mode == "partition" and link.resume is not None:
                    await link.resume.wait()
                    continue
                data = await reader.read(65536)
                if not data:
                    break
                if link.mode == "drop":
                    self.proxy.stats["dropped_bytes"] += len(data)
                    continue
                if link.mode == "partition":
                    # Read just before the partition began: hold it back.
                    while link.mode == "partition" and link.resume is not None:
                        await link.resume.wait()
                deadline = time.monotonic() + (link.delay_ms / 1000.0 if link.mode == "delay" else 0)
                await queue.put((deadline, data))
            await queue.put(None)
            await sender
        except (ConnectionError, OSError):
            pass
        finally:
            sender.cancel()

    async def _send(self, queue, writer):
        try:
            while True:
                item = await queue.get()
                if item is None:
                    try:
                        writer.write_eof()
                    except (OSError, RuntimeError):
                        pass
                    return
                deadline, data = item
                wait = deadline - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                self.proxy.stats["bytes"] += len(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
