"""``python -m crimecast``: the command line of the forecasting service."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import getpass
import json
from pathlib import Path
import sys
from typing import Any

from crimecast.domain import backtest
from crimecast.domain.errors import CrimecastError
from crimecast.domain.keys import SeriesKey
from crimecast.domain.model import CrimeForecaster
from crimecast.domain.parallel import StderrProgress, default_workers
from crimecast.domain.series import read_many

EXIT_BAD_INPUT = 2


def _backtest(args: argparse.Namespace) -> int:
    counts = read_many(args.counts)
    keys = [SeriesKey.parse(s) for s in args.series] if args.series else None
    tasks = backtest.plan(counts, keys, backtest.parse_origins(args.origins), args.horizon)
    result = backtest.run(tasks, args.workers, StderrProgress(f"backtest ({args.workers} workers)"))
    text = json.dumps(result, indent=1)
    if args.json:
        Path(args.json).write_text(text)
        print(json.dumps(result["summary"], indent=1))
    else:
        print(text)
    return 0


def _forecast(args: argparse.Namespace) -> int:
    counts = read_many(args.counts)
    key = SeriesKey.parse(args.series)
    observed = counts.series(key, include_partial=True).dropna()  # a gap's months are unknown: not shown
    model = CrimeForecaster().fit(counts.series(key))
    forecast = model.predict(args.months)
    print(f"{key.label}: last observed months, then the forecast with its 80% interval")
    for month, value in observed.iloc[-6:].items():
        note = "  (partial month: not used for training)" if month == counts.partial_month else ""
        print(f"  {month}  observed {int(value):8d}{note}")
    for row in forecast.itertuples():
        print(f"  {row.month}  forecast {row.yhat:8.1f}   [{row.yhat_lower:.1f} .. {row.yhat_upper:.1f}]")
    return 0


def _read_password(name: str) -> str:
    """From a prompt on a terminal, else one line of stdin: never from argv, never echoed."""
    return getpass.getpass(f"password for {name}: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")


def _accounts() -> tuple[Any, Any]:
    """The stores and the accounts job, imported when a user command runs (the others need neither)."""
    from crimecast.adapters.stores import get_stores
    from crimecast.jobs import accounts

    return get_stores(), accounts


def _users_add(args: argparse.Namespace) -> int:
    stores, accounts = _accounts()
    user = accounts.add_user(stores, args.name, _read_password(args.name), args.role)
    print(f"user {args.name} added with roles {', '.join(user['roles'])}")
    return 0


def _users_list(args: argparse.Namespace) -> int:
    stores, accounts = _accounts()
    for user in accounts.list_users(stores):
        print(f"{user['username']:24s} {','.join(user['roles']):16s} {'disabled' if user['disabled'] else 'active'}")
    return 0


def _users_disable(args: argparse.Namespace) -> int:
    stores, accounts = _accounts()
    accounts.disable_user(stores, args.name)
    print(f"user {args.name} disabled")
    return 0


def _users_reset_password(args: argparse.Namespace) -> int:
    stores, accounts = _accounts()
    accounts.reset_password(stores, args.name, _read_password(args.name))
    print(f"password of {args.name} reset")
    return 0


def _users_unlock(args: argparse.Namespace) -> int:
    stores, accounts = _accounts()
    forgotten = accounts.unlock(stores, args.name)
    print(f"{args.name}: {forgotten} sign-in throttle records forgotten (holds, counts and trusted addresses)")
    return 0


def _users_set_role(args: argparse.Namespace) -> int:
    stores, accounts = _accounts()
    user = accounts.update_user(stores, args.name, role=args.role)
    print(f"user {args.name} now has roles {', '.join(user['roles'])}; its tokens are revoked")
    return 0


def _users_revoke(args: argparse.Namespace) -> int:
    stores, accounts = _accounts()
    accounts.revoke_tokens(stores, args.name)
    print(f"every token of {args.name} is revoked")
    return 0


def _keys_rotate(args: argparse.Namespace) -> int:
    from crimecast.jobs import accounts

    ring = accounts.rotate_keys(force=args.force)
    if args.force:
        print(f"new signing key {ring.current.kid}, alone: no earlier key verifies tokens any more, and every "
              "user's tokens are revoked (everyone signs in again)")
    else:
        previous = ring.previous.kid if ring.previous else "none"
        print(f"new signing key {ring.current.kid}; the previous key {previous} still verifies tokens until they expire")
    return 0


def _retrain(args: argparse.Namespace) -> int:
    from crimecast.adapters.stores import get_stores
    from crimecast.jobs.retrain import run_locally

    summary = run_locally(get_stores(), workers=args.workers, progress=StderrProgress("retrain (batches)"))
    print(json.dumps(summary, indent=1))
    return 0


def date_arg(text: str) -> Any:
    from datetime import date

    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {text!r}") from None


def _ingest(args: argparse.Namespace) -> int:
    from crimecast.adapters.stores import get_stores
    from crimecast.jobs import ingest, pipeline

    def progress(message: str) -> None:
        print(f"[ingest] {message}", file=sys.stderr, flush=True)

    stores = get_stores()
    source = ingest.FileSource(args.from_file) if args.from_file else None
    if args.resume:
        run = pipeline.ingest_now(stores, "cli", source, resume_run=args.resume, progress=progress, page_size=args.page_size)
    else:
        options: dict[str, Any] = {"mode": "backfill" if args.backfill else "incremental", "window_months": args.window_months,
                                   "as_of": args.as_of}
        if args.socrata_url and not source:
            options["source_label"] = args.socrata_url.rstrip("/")
        run = pipeline.ingest_now(stores, "cli", source, progress=progress, page_size=args.page_size, **options)
    print(json.dumps(run, indent=1))
    if run["status"] != "succeeded":
        print(f"error: ingest run {run['run_id']} {run['status']}: {run['detail'].get('error', '')}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m crimecast", description="Chicago crime forecasting service")
    commands = parser.add_subparsers(dest="command", required=True)
    counts = argparse.ArgumentParser(add_help=False)
    counts.add_argument("--counts", action="append", required=True, metavar="FILE",
                        help="tidy counts CSV or portal CSV export, plain or gzipped (repeatable)")
    bt = commands.add_parser("backtest", parents=[counts], help="score the model and its references by rolling-origin backtest")
    bt.add_argument("--series", action="append", metavar="AREA:TYPE",
                    help="e.g. Austin:ASSAULT, 25:ALL, city:THEFT (repeatable; default: every series)")
    bt.add_argument("--origins", required=True, help="comma-separated YYYY-MM, e.g. 2016-12,2017-12")
    bt.add_argument("--horizon", type=int, default=12, help="months scored after each origin (default 12)")
    bt.add_argument("--json", metavar="OUT.json", help="write the full result here; print the summary")
    bt.add_argument("--workers", type=int, default=default_workers(), help="processes (default: every core)")
    bt.set_defaults(handler=_backtest)
    fc = commands.add_parser("forecast", parents=[counts], help="train on one series and print its forecast")
    fc.add_argument("--series", required=True, metavar="AREA:TYPE", help="e.g. Austin:ASSAULT")
    fc.add_argument("--months", type=int, default=12, help="months ahead (default 12)")
    fc.set_defaults(handler=_forecast)
    rt = commands.add_parser("retrain", help="retrain every series on this machine against the configured stores "
                                            "(DATA_BUCKET, SERIES_TABLE, RUNS_TABLE; AWS_ENDPOINT_URL for the local stack)")
    rt.add_argument("--workers", type=int, default=default_workers(), help="processes (default: every core)")
    rt.set_defaults(handler=_retrain)
    ig = commands.add_parser("ingest", help="pull the city's crime records into the stored monthly counts "
                                            "(DATA_BUCKET, SERIES_TABLE, RUNS_TABLE; AWS_ENDPOINT_URL for the local stack)")
    what = ig.add_mutually_exclusive_group()
    what.add_argument("--backfill", action="store_true", help="the whole history since 2001, a year per query; replaces every month")
    what.add_argument("--window-months", type=int, default=13, metavar="N",
                      help="re-pull the last N months and replace them as a whole (default 13)")
    ig.add_argument("--socrata-url", metavar="URL", help="portal base URL (default: CRIMECAST_SOCRATA_URL, else the city's)")
    ig.add_argument("--from-file", metavar="FILE",
                    help="import a portal CSV export or tidy counts instead (offline); replaces the months it covers, "
                         "or every month with --backfill")
    ig.add_argument("--resume", metavar="RUN_ID", help="carry on a run that crashed or failed, from its checkpoint")
    ig.add_argument("--as-of", type=date_arg, metavar="YYYY-MM-DD",
                    help="the portal's today (default: today); to replay a snapshot or a stand-in")
    ig.add_argument("--page-size", type=int, metavar="ROWS", help="rows per request (default and most: 50000)")
    ig.set_defaults(handler=_ingest)
    users = commands.add_parser("users", help="manage API users (USERS_TABLE, LOGIN_ATTEMPTS_TABLE for reset-password "
                                              "and unlock, and AWS credentials from the environment)")
    user_commands = users.add_subparsers(dest="users_command", required=True)
    add = user_commands.add_parser("add", help="add a user; the password is read from a prompt or stdin, never argv")
    add.add_argument("name", help="user name")
    add.add_argument("--role", choices=["viewer", "admin"], default="viewer")
    add.set_defaults(handler=_users_add)
    user_commands.add_parser("list", help="list users and their roles").set_defaults(handler=_users_list)
    for command, handler, text in (("disable", _users_disable, "disable a user: logins and existing tokens stop working"),
                                   ("reset-password", _users_reset_password,
                                    "set a new password (prompt or stdin) and unlock; existing tokens stop working"),
                                   ("unlock", _users_unlock, "forget the user's sign-in throttle records: every "
                                                             "address may try again at once"),
                                   ("revoke", _users_revoke, "end every token of a user (sign the user out everywhere)")):
        sub = user_commands.add_parser(command, help=text)
        sub.add_argument("name", help="user name")
        sub.set_defaults(handler=handler)
    set_role = user_commands.add_parser("set-role", help="make a user a viewer or an admin; existing tokens stop working")
    set_role.add_argument("name", help="user name")
    set_role.add_argument("role", choices=["viewer", "admin"])
    set_role.set_defaults(handler=_users_set_role)
    keys = commands.add_parser("keys", help="the JWT signing keys (JWT_SECRET_ARN and AWS credentials from the environment)")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    rotate = key_commands.add_parser("rotate", help="make a new signing key and keep the current one as previous: "
                                                    "tokens signed before keep working until they expire")
    rotate.add_argument("--force", action="store_true",
                        help="after a leak: keep no earlier key and revoke every user's tokens, so every token "
                             "issued before stops working at once (also when the current key is young)")
    rotate.set_defaults(handler=_keys_rotate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except CrimecastError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_BAD_INPUT
