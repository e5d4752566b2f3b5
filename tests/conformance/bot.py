"""A small bot written against the official python-trueconf-bot API.

Echo, one FSM step and one file send; the conformance runner connects it to trueconf-sim.
Usage: python bot.py INFO_JSON  (the file written by `trueconf-sim --info-file`).
"""

import asyncio
import json
import sys

from trueconf import Bot, Dispatcher, F, Message, ParseMode, Router
from trueconf.fsm import FSMContext, State, StatesGroup
from trueconf.fsm.storage.memory import MemoryStorage
from trueconf.types.input_file import BufferedInputFile


class Form(StatesGroup):
    name = State()


router = Router()
dp = Dispatcher(storage=MemoryStorage())
dp.include_router(router)


@router.message(F.text == "/start")
async def start(msg: Message, state: FSMContext):
    await state.set_state(Form.name)
    await msg.answer("What is your name?", parse_mode=ParseMode.TEXT)


@router.message(Form.name, F.text)
async def got_name(msg: Message, state: FSMContext):
    await state.clear()
    await msg.answer(f"Nice to meet you, {msg.text}", parse_mode=ParseMode.TEXT)


@router.message(F.text == "/file")
async def send_file(msg: Message):
    await msg.answer_document(
        BufferedInputFile(file=b"hello from python\n", file_name="hello.txt"),
        caption="here you go",
    )


@router.message(F.text)
async def echo(msg: Message):
    await msg.answer(f"echo: {msg.text}", parse_mode=ParseMode.TEXT)


async def main() -> None:
    with open(sys.argv[1]) as f:
        info = json.load(f)
    tls = info["url"].startswith("https")
    bot = Bot(
        server="127.0.0.1",
        token=info["token"],
        dispatcher=dp,
        https=tls,
        # The emulator's certificate is self-signed: exercise the verify_ssl=False path.
        verify_ssl=not tls,
        web_port=info["port"],
    )
    await bot.run(handle_signals=False)


if __name__ == "__main__":
    asyncio.run(main())
