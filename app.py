"""The askcolleague web chat and MCP tools: `python app.py [--index DIR] [--host 127.0.0.1] [--port 7860] [--no-mcp]`."""
from __future__ import annotations

import argparse
import os
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    here = Path(__file__).resolve().parent
    p = argparse.ArgumentParser(description="Serve the askcolleague web chat (builds the demo index on first run).")
    p.add_argument("--index", default=os.environ.get("ASKCOLLEAGUE_INDEX") or str(here / "indexes" / "default"),
                   help="Index folder [default: $ASKCOLLEAGUE_INDEX or indexes/default].")
    p.add_argument("--host", default="127.0.0.1", help="Address to listen on [default: 127.0.0.1].")
    p.add_argument("--port", type=int, default=7860, help="Port [default: 7860].")
    p.add_argument("--no-mcp", action="store_true", help="Do not serve the MCP tools at /gradio_api/mcp/.")
    args = p.parse_args(argv)

    from askcolleague.errors import AskColleagueError
    from askcolleague.web.app import serve

    try:
        serve(args.index, host=args.host, port=args.port, mcp=not args.no_mcp)
    except AskColleagueError as e:  # one line naming the problem and the fix
        raise SystemExit(f"askcolleague: {e}") from None


if __name__ == "__main__":
    main()
