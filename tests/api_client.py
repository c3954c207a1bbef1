#!/usr/bin/python3
"""An independent client of the sandbox-deck API, written from docs/protocol.md alone.

Usage: api_client.py SOCKET PROJECT_DIR
Lists the sandboxes, creates a shell sandbox "py" for PROJECT_DIR, stops it, and prints
one line per step. Exits non-zero on any surprise.
"""

import asyncio
import json
import sys

import websockets

PROTOCOL = 1


class Client:
    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0
        self.snapshot = None
        self.events = []

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

    async def call(self, cmd, **args):
        self.next_id += 1
        request_id = self.next_id
        await self.ws.send(json.dumps({"id": request_id, "command": {"cmd": cmd, **args}}))
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), 60))
            if message["type"] == "event":
                self.events.append(message["event"])
                continue
            if message.get("id") != request_id:
                continue
            if message["type"] == "error":
                raise SystemExit(f"{cmd} failed: {message['kind']}: {message['message']}")
            return message["result"]


async def main(socket_path, project_dir):
    async with websockets.unix_connect(socket_path) as ws:
        client = Client(ws)
        await client.start()
        records = await client.call("list")
        print(f"listed {len(records)}", flush=True)
        created = await client.call(
            "create", project_dir=project_dir, name="py", shell=True, args=["sleep", "600"]
        )
        print(f"created {created['name']} {created['state']}", flush=True)
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
                message = json.loads(await asyncio.wait_for(ws.recv(), 0.1))
                if message["type"] == "event":
                    client.events.append(message["event"])
            except asyncio.TimeoutError:
                pass


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
