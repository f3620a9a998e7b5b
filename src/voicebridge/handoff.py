"""Sibling worker processes hand each other a tab's socket, so a resume works whichever worker the
reconnecting tab reached (issue 12 across the one-worker-per-core serving layer, issue 10).

A parked session lives in the worker process that ran it; the kernel gives the tab's new connection to
any worker. A resume token names its worker's slot (resume.py); a worker that receives a
`session.resume` for a sibling's token passes the socket itself (SCM_RIGHTS over a Unix datagram socket
per worker, in a directory the master made before forking) together with the frame it read, and forgets
the connection. The sibling takes the socket on as an open WebSocket (front.Front.take_handed) and handles the frame as if it had
read it. Nothing crosses processes but that frame and the descriptor. Loop-thread only.
"""

from __future__ import annotations

import array
import json
import logging
import os
import socket
from collections.abc import Callable

log = logging.getLogger("voicebridge.handoff")

MAX_MESSAGE = 64 * 1024  # the frames handed over with a socket (a session.resume is a few hundred bytes)

Take = Callable[[socket.socket, dict], None]  # the socket, and {"frames": [...], "user": [kind, value, name]}


def slot_path(directory: str, slot: int) -> str:
    return os.path.join(directory, f"worker-{slot}.sock")


class Handoff:
    def __init__(self, directory: str, slot: int):
        self.directory = directory
        self.slot = slot
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        path = slot_path(directory, slot)
        try:
            os.unlink(path)  # a predecessor in this slot (a restarted worker) left it
        except FileNotFoundError:
            pass
        self._sock.bind(path)
        self._sock.setblocking(False)

    def listen(self, loop, take: Take) -> None:
        loop.add_reader(self._sock.fileno(), self._receive, take)

    def send(self, slot: int, sock: socket.socket, message: dict) -> bool:
        """Pass `sock`, and what the sibling needs to carry on (the frames already read from it, whom it
        counts for), to the worker in `slot`; False if it cannot take it."""
        payload = json.dumps(message).encode()
        if len(payload) > MAX_MESSAGE:
            return False
        # Said before the descriptor leaves: the sibling may have carried on with the tab before this
        # process runs again.
        log.info("event=handoff.sent slot=%s", slot)
        try:
            # (socket.send_fds drops its address argument on Python 3.11: sendmsg directly.)
            rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [sock.fileno()]))]
            self._sock.sendmsg([payload], rights, 0, slot_path(self.directory, slot))
        except OSError as exc:  # that worker is gone or restarting: the tab starts afresh instead
            log.info("event=handoff.failed slot=%s detail=%s", slot, exc)
            return False
        return True

    def _receive(self, take: Take) -> None:
        while True:
            try:
                payload, fds, _flags, _addr = socket.recv_fds(self._sock, MAX_MESSAGE, 4)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("event=handoff.receive_failed detail=%s", exc)
                return
            socks = [socket.socket(fileno=fd) for fd in fds]
            try:
                message = json.loads(payload)
                frames, user = message["frames"], message["user"]
                if len(socks) != 1 or not all(isinstance(f, str) for f in frames + user) or len(user) != 3:
                    raise ValueError("one socket, text frames and a user expected")
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("event=handoff.bad_message detail=%s", exc)
                for s in socks:
                    s.close()
                continue
            socks[0].setblocking(False)
            take(socks[0], message)

    def close(self) -> None:
        self._sock.close()
        try:
            os.unlink(slot_path(self.directory, self.slot))
        except OSError:
            pass

