"""Serving: the Gradio web chat and its API (app.py, render.py, followup.py, assets/), logins and API
tokens (auth.py), the ASGI guard in front of every route (guard.py), and the MCP server (mcp.py)."""
