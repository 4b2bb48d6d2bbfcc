"""`ecolobster chat`: the EcoLobster chat (interactive on a terminal, line by line from a pipe)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "chat",
        help="talk to EcoLobster: questions in English or Chinese, follow-ups keep the context",
        description="Chat with EcoLobster. On a terminal: a prompt with history, completion and slash "
                    "commands (/help lists them). From a pipe: one question per line; code (fenced "
                    "with ``` or not) is kept together until the next question and audited.",
    )
    p.add_argument("--lang", choices=["en", "zh"], help="answer language (default: follow the user)")
    p.add_argument("--format", choices=["rich", "markdown", "json"], default="rich", dest="fmt",
                   help="how answers are shown (default: rich)")
    p.add_argument("--history-file", type=Path, help="where the input history is kept "
                   "(default: $XDG_STATE_HOME/ecolobster/chat_history)")
    p.add_argument("--no-history", action="store_true", help="keep no history on disk")
    p.set_defaults(handler=cmd_chat)


def cmd_chat(args: argparse.Namespace) -> int:
    from advisor.chat.session import main

    return main(lang=args.lang, fmt=args.fmt, history_file=args.history_file, no_history=args.no_history)
