"""The EcoLobster chat, a way in: `messages` (what the chat says, how lines are laid out), `input`
(cleaning, code or question, splitting piped input), `history`, `commands` (the slash commands)
and `session` (the Chat, the prompt-toolkit session and the piped mode). Nothing is imported here,
so `ecolobster chat` starts on the standard library alone."""
