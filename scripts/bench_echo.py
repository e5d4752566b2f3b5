"""The echo bot of the benchmarks, written on the official python-trueconf-bot client.

Answers every text message with its text, optionally after a delay. Started by
`benches/e2e.rs` with the same arguments as our bots:
    python bench_echo.py --url WS_URL --token TOKEN --port PORT [--delay-ms D]
"""

import argparse
import asyncio
import logging

from trueconf import Bot, Dispatcher, F, Message, ParseMode, Router

parser = argparse.ArgumentParser()
parser.add_argument("--url")
parser.add_argument("--token", required=True)
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--delay-ms", type=int, default=0)
parser.add_argument("--ack")  # our bots' option; the official client acks on receipt
args = parser.parse_args()

logging.disable(logging.CRITICAL)
router = Router()
dp = Dispatcher()
dp.include_router(router)
delay = args.delay_ms / 1000.0


@router.message(F.text)
async def echo(msg: Message):
    if delay:
        await asyncio.sleep(delay)
    await msg.answer(msg.text, parse_mode=ParseMode.TEXT)


async def main() -> None:
    bot = Bot(server="127.0.0.1", token=args.token, dispatcher=dp, https=False,
              web_port=args.port)
    await bot.run(handle_signals=False)


if __name__ == "__main__":
    asyncio.run(main())
