"""A client written only from docs/protocol.md and the generated _pb2: raw asyncio streams,
the preface, the 5-byte frame header, call ids. Proves the doc is enough (no hiscore.client)."""
from __future__ import annotations

import asyncio
import struct

from hiscore._proto import hiscore_pb2 as pb

from conftest import ServerInfo, run, unique

PREFACE = b"HISCORE\x01"  # protocol.md §1: ASCII HISCORE + version byte 0x01


class DocClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.next_id = 1
        self.waiting: dict = {}
        self.hello: asyncio.Future = asyncio.get_running_loop().create_future()
        self.task = asyncio.ensure_future(self.read_loop())

    @classmethod
    async def connect(cls, host: str, port: int) -> "DocClient":
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(PREFACE)
        return cls(reader, writer)

    async def read_loop(self) -> None:
        while True:
            flag, length = struct.unpack(">BI", await self.reader.readexactly(5))  # §2
            assert flag == 0
            resp = pb.Response.FromString(await self.reader.readexactly(length))
            if resp.call_id == 0:  # hello or connection-level error
                self.hello.set_result(resp)
            else:
                self.waiting.pop(resp.call_id).set_result(resp)

    async def call(self, **method: object) -> pb.Response:
        call_id, self.next_id = self.next_id, self.next_id + 1
        fut = asyncio.get_running_loop().create_future()
        self.waiting[call_id] = fut
        body = pb.Request(call_id=call_id, **method).SerializeToString()
        self.writer.write(struct.pack(">BI", 0, len(body)) + body)
        await self.writer.drain()
        resp = await fut
        if resp.HasField("status") and resp.status.code != 0:  # §4: absent or 0 = OK
            raise RuntimeError(f"{pb.StatusCode.Name(resp.status.code)}: {resp.status.message}")
        return resp

    def close(self) -> None:
        self.task.cancel()
        self.writer.close()


def test_doc_only_client(server: ServerInfo) -> None:
    board = unique()

    async def main() -> None:
        c = await DocClient.connect(server.host, server.port)
        try:
            # Requests may be sent before the hello arrives (§1.4).
            early = asyncio.ensure_future(c.call(ping=pb.PingRequest(payload=b"early")))
            hello = await c.hello
            assert hello.hello.protocol_version == 1
            assert (await early).ping.payload == b"early"
            subs = [c.call(submit=pb.SubmitRequest(board_id=board, player_id=f"p{i}", score=i * 10))
                    for i in range(5)]
            for r in await asyncio.gather(*subs):
                assert r.WhichOneof("result") == "submit" and r.submit.created
            top = (await c.call(top=pb.TopRequest(board_id=board, limit=3))).top
            assert [e.player_id for e in top.entries] == ["p4", "p3", "p2"]
            assert [e.rank for e in top.entries] == [1, 2, 3] and top.board_size == 5
        finally:
            c.close()
    run(main())
