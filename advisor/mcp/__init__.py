"""EcoLobster as an MCP server, a way in: `inputs` (the tools' typed inputs), `guard` (the path
guard of the audit tool), `tools` (what each tool runs, through the advisor's API) and `server`
(calling a tool safely, the MCP server and its wire). Nothing is imported here: the input models
and the tool list load without the `mcp` SDK."""
