"""What ``StreamWriter.drain()`` costs when the transport has room (asyncio herd, held replies).

python bench/results/hotpath/s23/drain_cost.py
"""

import asyncio
import time


async def main() -> None:
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    count = 200_000
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(count):
            await writer.drain()
        per_call = (time.perf_counter() - started) / count * 1e6
        print(f"drain on a writer with room: {per_call:.2f} us")
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()


asyncio.run(main())
