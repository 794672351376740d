#!/usr/bin/env python3
"""A CCcam-like demo backend: speaks first with a 16-byte banner naming itself, then
echoes what it receives prefixed with its name. For `make demo`, not for production.

  backend.py PORT NAME
"""
import asyncio, sys

async def main(port: int, name: str) -> None:
    async def serve(reader, writer):
        writer.write(f"ID:{name}".ljust(15).encode()[:15] + b"\n")
        await writer.drain()
        while data := await reader.read(4096):
            writer.write(f"[{name}] ".encode() + data)
            await writer.drain()
        writer.close()
    server = await asyncio.start_server(serve, "127.0.0.1", port)
    async with server:
        await server.serve_forever()

if __name__ == "__main__":
    try:
        asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
    except KeyboardInterrupt:
        pass
