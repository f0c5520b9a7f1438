"""``python -m local.portal``: the stand-in on a port; ``python -m local.portal advance``: a
replaying portal's next month published."""

from __future__ import annotations

import argparse
from datetime import datetime
import json
import os
from pathlib import Path
import sys

from crimecast.tools.data import AREA_TYPE_FILE
from local.portal.server import StandInPortal, advance
from local.portal.soql import comma_separated


def _advance_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.portal advance",
                                     description="Move a replaying portal's today on by a month (or --months).")
    parser.add_argument("--url", default=os.environ.get("CRIMECAST_SOCRATA_URL") or "http://127.0.0.1:8089",
                        help="the portal (default: CRIMECAST_SOCRATA_URL, else http://127.0.0.1:8089)")
    parser.add_argument("--months", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        state = advance(args.url, args.months)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(state))
    return 0


def area_list(text: str) -> list[int]:
    """``8,25,32`` as areas (the CLI's ``--areas``, the stack's CRIMECAST_REPLAY_AREAS)."""
    return [int(part) for part in comma_separated(text)]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["advance"]:
        return _advance_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m local.portal", description="A stand-in for the Chicago data portal. "
                                     "`python -m local.portal advance [--url URL]` moves a replaying portal on a month.")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--data-dir", type=Path, default=None, help="default: CRIMECAST_DATA_DIR or ../shared/data")
    parser.add_argument("--dataset", choices=["csv", "api-sample", "replay"], default=None,
                        help="default: replay with --replay-from, else csv")
    parser.add_argument("--replay-from", metavar="YYYY-MM", default=None,
                        help=f"replay {AREA_TYPE_FILE}: the city as of the end of this month")
    parser.add_argument("--replay-data", type=Path, action="append", default=None, metavar="FILE",
                        help=f"replay these tidy counts files (repeatable) instead of {AREA_TYPE_FILE}")
    parser.add_argument("--areas", type=area_list, default=None, help="replay: only these areas, e.g. 8,25,32 (0: unplaced)")
    parser.add_argument("--types", type=comma_separated, default=None, help="replay: only these types, e.g. ASSAULT,THEFT")
    parser.add_argument("--replicate-years", type=int, default=1, help="copy the 2022 rows into this many years (benchmarks)")
    parser.add_argument("--now", type=datetime.fromisoformat, default=None,
                        help="the portal's clock, e.g. 2022-11-20T00:00:00: the 7 days before it are withheld")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    dataset = args.dataset or ("replay" if args.replay_from else "csv")
    portal = StandInPortal(dataset, args.data_dir, args.port, args.host, args.replicate_years, args.now, quiet=not args.verbose,
                           replay_from=args.replay_from, areas=args.areas, types=args.types, replay_files=args.replay_data)
    frame = portal.state.frame
    incidents = int(frame["_n"].sum()) if "_n" in frame.columns else len(frame)
    replay = f", replaying: today {portal.state.today}" if portal.state.today is not None else ""
    print(f"portal stand-in at {portal.url} ({dataset}, {incidents:,} incidents{replay}); "
          f"CRIMECAST_SOCRATA_URL={portal.url}", file=sys.stderr, flush=True)
    try:
        portal.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        portal.server.server_close()
    return 0
