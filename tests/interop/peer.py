"""An independent WebSocket peer (the Python `websockets` library) for interop checks.

    peer.py client URL   run every check against an echo server at URL; exit 0 if all pass
    peer.py server PORT  echo one connection on 127.0.0.1:PORT; exit 0 if its close was
                         code 4001, reason "rust done"
    peer.py chat URL     two clients in the chat room at URL (examples/axum_chat): what
                         one says, both receive; exit 0 if so
"""

import asyncio
import sys

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

MESSAGES = [
    "hello",
    "κόσμε 𝄞 – multi-byte UTF-8",
    b"\x00\xff\x01 binary",
    "",
    b"",
    bytes(range(256)) * 4096,  # 1 MiB
]


async def client(url: str) -> None:
    async with connect(url, max_size=None) as ws:  # offers permessage-deflate
        assert ws.response.headers.get("Sec-WebSocket-Extensions", "").startswith("permessage-deflate"), \
            "compression not negotiated"
        for message in MESSAGES:
            await ws.send(message)
            reply = await ws.recv()
            assert reply == message, f"echo mismatch for a {type(message).__name__} of {len(message)}"
            print(f"ok: echo of {type(message).__name__}, {len(message)} bytes")
        # A fragmented message: websockets sends an iterable as fragments.
        await ws.send(["frag", "mented ", "κόσμε"])
        assert await ws.recv() == "fragmented κόσμε"
        await ws.send([b"\x01\x02", b"", b"\x03"])
        assert await ws.recv() == b"\x01\x02\x03"
        print("ok: fragmented text and binary")
        pong = await ws.ping(b"are you there")
        latency = await asyncio.wait_for(pong, 5)
        print(f"ok: ping answered in {latency * 1000:.2f} ms")
        await ws.close(4000, "python done")
        assert ws.close_code == 4000, f"server echoed close code {ws.close_code}"
        print(f"ok: close handshake, server echoed {ws.close_code}")


async def server(port: int) -> int:
    done = asyncio.get_running_loop().create_future()

    async def echo(ws):
        try:
            async for message in ws:
                await ws.send(message)
        except ConnectionClosed:
            pass  # a code other than 1000/1001 ends the loop with an exception
        finally:
            done.set_result((ws.close_code, ws.close_reason))

    async with serve(echo, "127.0.0.1", port, max_size=None):
        print("ready", flush=True)
        code, reason = await asyncio.wait_for(done, 60)
    print(f"peer closed with {code} {reason!r}")
    return 0 if (code, reason) == (4001, "rust done") else 1


async def chat(url: str) -> None:
    async def until(ws, line: str) -> None:
        while (got := await asyncio.wait_for(ws.recv(), 5)) != line:
            print(f"   (skipping {got!r})")

    async with connect(url) as alice, connect(url) as bob:
        await bob.send("κόσμε from python")
        said = await asyncio.wait_for(bob.recv(), 5)
        # The room prefixes each line with its sender's id.
        while not said.endswith(": κόσμε from python"):
            said = await asyncio.wait_for(bob.recv(), 5)
        await until(alice, said)
        print(f"ok: both clients got {said!r}")
        await bob.close()
        assert bob.close_code == 1000, f"close code {bob.close_code}"
        print("ok: close handshake")


def main() -> int:
    mode, arg = sys.argv[1], sys.argv[2]
    if mode == "client":
        asyncio.run(client(arg))
        return 0
    if mode == "chat":
        asyncio.run(chat(arg))
        return 0
    return asyncio.run(server(int(arg)))


if __name__ == "__main__":
    sys.exit(main())
