#!/usr/bin/python3
"""An independent client of the sandbox-deck API, written from docs/protocol.md alone.

Usage: api_client.py SOCKET PROJECT_DIR [SCREEN]
Lists the sandboxes, creates a shell sandbox "py" for PROJECT_DIR, watches its pane's
preview until it shows text, stops it, and prints one line per step; with SCREEN, first subscribes to that sandbox's screen and prints the
size and a pixel of the first frame. Exits non-zero on any surprise.
"""

import asyncio
import json
import struct
import sys
import zlib

import websockets

PROTOCOL = 1


class Client:
    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0
        self.snapshot = None
        self.events = []
        self.frames = []
        self.previews = []

    async def start(self):
        hello = json.loads(await self.ws.recv())
        if hello["type"] != "hello":
            raise SystemExit(f"expected hello, got {hello}")
        if hello["protocol"] != PROTOCOL:
            await self.ws.close(code=1002)
            raise SystemExit(
                f"the engine speaks protocol {hello['protocol']}, this client {PROTOCOL}: "
                "restart the engine from the same sandbox-deck as the client"
            )
        snapshot = json.loads(await self.ws.recv())
        if snapshot["type"] != "snapshot":
            raise SystemExit(f"expected snapshot, got {snapshot}")
        self.snapshot = snapshot
        self.hello = hello

    async def recv(self):
        """The next text message; binary screen frames and previews are kept apart, binary
        frames of other kinds ignored."""
        while True:
            data = await asyncio.wait_for(self.ws.recv(), 60)
            if isinstance(data, bytes):
                if data[:4] == b"SDF1":
                    self.frames.append(decode_frame(data))
                continue
            message = json.loads(data)
            if message["type"] == "preview":
                self.previews.append(message)
                continue
            return message

    async def call(self, cmd, **args):
        self.next_id += 1
        request_id = self.next_id
        await self.ws.send(json.dumps({"id": request_id, "command": {"cmd": cmd, **args}}))
        while True:
            message = await self.recv()
            if message["type"] == "event":
                self.events.append(message["event"])
                continue
            if message.get("id") != request_id:
                continue
            if message["type"] == "error":
                raise SystemExit(f"{cmd} failed: {message['kind']}: {message['message']}")
            return message["result"]


def decode_frame(data):
    """A screen frame: b"SDF1", name length, name, width, height (big-endian u32), zlib RGB."""
    if data[:4] != b"SDF1":
        raise SystemExit(f"not a screen frame: {data[:16]!r}")
    n = data[4]
    name = data[5 : 5 + n].decode()
    width, height = struct.unpack(">II", data[5 + n : 13 + n])
    rgb = zlib.decompress(data[13 + n :])
    if len(rgb) != width * height * 3:
        raise SystemExit(f"{len(rgb)} bytes of pixels for {width}x{height}")
    return name, width, height, rgb


async def watch(client, name):
    await client.call("subscribe_screen", name=name, fps=2)
    while not client.frames:
        data = await asyncio.wait_for(client.ws.recv(), 30)
        if isinstance(data, bytes):
            client.frames.append(decode_frame(data))
    name, width, height, rgb = client.frames[0]
    r, g, b = rgb[(5 * width + 5) * 3 : (5 * width + 5) * 3 + 3]
    print(f"screen {name} {width}x{height} pixel {r},{g},{b}", flush=True)
    await client.call("unsubscribe_screen", name=name)


async def preview(client, name):
    """Subscribes to the pane's preview and waits for a text of it."""
    await client.call("subscribe_preview", name=name)
    while not any(p["name"] == name and isinstance(p.get("text"), str) for p in client.previews):
        data = await asyncio.wait_for(client.ws.recv(), 30)
        if isinstance(data, str):
            message = json.loads(data)
            if message["type"] == "preview":
                client.previews.append(message)
            elif message["type"] == "event":
                client.events.append(message["event"])
    print(f"preview {name} text", flush=True)
    await client.call("unsubscribe_preview", name=name)


async def main(socket_path, project_dir, screen=None):
    async with websockets.unix_connect(socket_path) as ws:
        client = Client(ws)
        await client.start()
        if screen:
            await watch(client, screen)
        records = await client.call("list")
        print(f"listed {len(records)}", flush=True)
        created = await client.call(
            "create", project_dir=project_dir, name="py", shell=True, args=["sleep", "600"]
        )
        print(f"created {created['name']} {created['state']}", flush=True)
        if "previews" in client.hello["capabilities"]:
            await preview(client, "py")
        stopped = await client.call("stop", name="py")
        print(f"stopped {stopped['name']} {stopped['state']}", flush=True)
        # The engine pushes the change too; wait for the record to say stopped.
        for _ in range(200):
            if any(
                e["kind"] in ("sandbox_added", "sandbox_changed")
                and e["sandbox"]["name"] == "py"
                and e["sandbox"]["state"] == "stopped"
                for e in client.events
            ):
                print("event py stopped", flush=True)
                break
            try:
                data = await asyncio.wait_for(ws.recv(), 0.1)
                if isinstance(data, str) and json.loads(data)["type"] == "event":
                    client.events.append(json.loads(data)["event"])
            except asyncio.TimeoutError:
                pass


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
