"""tkgs-runbook: validate a site, run the runbook's stages, list the site file's fields."""

from __future__ import annotations

import signal
import sys

from .runner import interruption

# Started as the command line (not imported by a test): from here on a signal is kept, never a
# traceback of an import cut short nor a silent death by SIGHUP; main() then says what it stopped.
if sys.argv and sys.argv[0].endswith(("tkgs-runbook", "cli.py")):
    for _signum in interruption.STOPPING_SIGNALS:
        signal.signal(_signum, interruption.early_handler)
    interruption.checkpoint("start")

import argparse  # noqa: E402
import logging  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Optional, Sequence  # noqa: E402

from .errors import SiteError, StageInterrupted, TkgsError  # noqa: E402

EXIT_OK, EXIT_ERRORS, EXIT_UNREADABLE = 0, 1, 2


def cmd_validate(args) -> int:
    from .validate import validate_files

    return validate_files(args.site, args.format)


def cmd_run(args) -> int:
    from .runner.folders import new_run_folder, open_run_folder
    from .runner.site_run import run_site
    from .stages import StageCall, select_stages
    from .site import load_site

    if len(args.site) > 1:  # a fleet: each site a run of its own, in a child process
        from .fleet import run_fleet

        if args.run_folder:
            raise TkgsError("--run-folder continues the run of one site; give one site file with it.")
        return run_fleet(args.site, select_stages(args.stages), Path(args.output or "runs"), apply=args.apply,
                         jobs=args.jobs)
    site = load_site(args.site[0])
    stages = select_stages(args.stages)
    if args.run_folder:
        folder = open_run_folder(site, Path(args.run_folder))
    else:
        folder = new_run_folder(site, Path(args.output or "runs"))
    print(f"run folder: {folder}", flush=True)
    results = []
    try:
        for result in run_site(site, [StageCall(s) for s in stages], folder, apply=args.apply,
                               progress=sys.stderr.isatty()):
            results.append(result)
            print(f"  done: {result.notebook.name}  ({result.html.name})"
                  + (f"  {result.changed}" if args.apply and result.stage.changes else ""), flush=True)
    except KeyboardInterrupt as exc:  # between stages, or before the first: the record says how far it got
        raise StageInterrupted(interrupted_run(folder, str(exc) or interruption.stopping() or "a signal")) from None
    planned = [r for r in results if r.stage.changes and not args.apply]
    if planned:
        from .effects import account

        said = account([e for r in planned for e in r.effects], nothing="nothing was changed")
        print(f"plan only: {said[0].lower() + said[1:].rstrip('.')}. Read the plan in "
              f"{', '.join(r.html.name for r in planned if r.html.exists())}, then rerun with --apply.")
    return EXIT_OK


def interrupted_run(folder: Path, signal_name: str) -> str:
    """What a signal that arrived outside a stage's notebook stopped, from the run folder's record."""
    from .runner.stage_list import OK, PENDING, StageList

    record = StageList.read(folder)
    stages = record.stages if record else []
    done = [e for e in stages if e.status not in (PENDING,)]
    if not done:
        return f"{signal_name} arrived before any stage started: nothing was changed. The run folder is {folder}."
    last = done[-1]
    left = [e.stage for e in stages if e.status == PENDING]
    return (f"{signal_name} arrived after stage {last.stage!r} ({last.status}) and before "
            + (f"stage {left[0]!r} started" if left else "the run ended") + ": the stages after it changed nothing. "
            + ("Every record is complete. " if all(e.status == OK for e in done) else "")
            + f"See {folder / 'index.html'}.")


def cmd_demo(args) -> int:
    from .demo import run_demo

    result = run_demo(Path(args.output), teardown=args.teardown, upgrade=args.upgrade)
    print(f"demo run folder: {result.folder}")
    for path in sorted(result.folder.glob("[01]*.html")):
        print(f"  {path.name}")
    print(f"{result.summary} See {result.index}.")
    if args.teardown:  # the last line: what the teardown removed, and that vCenter holds nothing the run made
        print(f"teardown: {result.teardown}")
    return EXIT_OK


def cmd_lab(args) -> int:
    from .runner.lab import run_lab
    from .paths import NOTEBOOKS

    return run_lab(Path(args.folder or NOTEBOOKS), args.port, open_browser=not args.no_browser)


def cmd_fields(args) -> int:
    from .site import field_docs

    rows = field_docs()
    if args.format == "markdown":
        print("| key | type | default | meaning |\n|---|---|---|---|")
        for r in rows:
            cells = (r[k].replace("|", "\\|") for k in ("type", "default", "meaning"))  # `a | b` types split cells
            print(f"| `{r['key']}` | " + " | ".join(cells) + " |")
    else:  # a key a line, its meaning wrapped under it: a 100-column terminal, as validate's report
        import textwrap

        from .validate import WIDTH

        for r in rows:
            default = "required" if r["default"] == "(required)" else f"default {r['default']}"
            for text, indent in ((f"{r['key']}  ({r['type']}; {default})", ""), (r["meaning"], "    ")):
                print(textwrap.fill(text, WIDTH, initial_indent=indent, subsequent_indent="    ",
                                    break_on_hyphens=False, break_long_words=False))
    return EXIT_OK


def _reader_gone() -> int:
    """stdout's reader has closed the pipe (`tkgs-runbook fields | head`): end quietly, as a Unix tool
    killed by SIGPIPE does, with its status; what is still buffered goes to /dev/null, not a traceback."""
    import os

    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 128 + signal.SIGPIPE


def _stages_help() -> str:
    from .stages import STAGES

    width = max(len(s.name) for s in STAGES)
    return "the stages, in runbook order:\n" + "\n".join(
        f"  {s.name:<{width}}  {s.title}" + (f" (with --apply it changes {s.changes})" if s.changes else "")
        + ("; only when named" if s.on_request else "") for s in STAGES)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tkgs-runbook", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check site files' networks before anything is touched")
    p.add_argument("site", nargs="+", help="the site file(s) (YAML); many: a summary line each, and a total")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("run", help="execute the stage notebooks headlessly into a run folder",
                       epilog=_stages_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("site", nargs="+", help="the site file (YAML); several: a fleet, each site in its own run folder")
    p.add_argument("--stages", nargs="+", metavar="STAGE",
                   help="stages to run, in runbook order (default: all but those run only when named; listed below); "
                        "e.g. --stages networks")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--output", help="folder that receives the run folder (default: runs)")
    where.add_argument("--run-folder", metavar="PATH",
                       help="run into this folder (made when missing), keeping the stages already run there: "
                            "one site only")
    p.add_argument("--apply", action="store_true", help="change vSphere / the appliance (default: plan only)")
    p.add_argument("--jobs", type=_positive, metavar="N",
                   help="a fleet: at most N sites at once (default: one site per vCenter at a time)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="run every stage with apply against the bundled simulators")
    p.add_argument("--output", default="runs", help="folder that receives the run folder (default: runs)")
    p.add_argument("--teardown", action="store_true",
                   help="then run the destroy stage: remove everything the run made in vCenter, in reverse")
    p.add_argument("--upgrade", action="store_true",
                   help="then day 2: rotate the appliance's secrets and upgrade it from v0.1.10 to v0.2.0, the "
                        "Supervisor's virtual IP answering through the new release")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("lab", help="step through the notebooks in JupyterLab (on 127.0.0.1)")
    p.add_argument("folder", nargs="?", help="the folder of notebooks to open (default: the checkout's notebooks/)")
    p.add_argument("--port", type=int, help="the port to listen on; if it is taken, the lab does not start "
                                            "(default: 8888 or the next free)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser (on a server without one)")
    p.set_defaults(func=cmd_lab)

    p = sub.add_parser("fields", help="document every key of a site file")
    p.add_argument("--format", choices=("text", "markdown"), default="text")
    p.set_defaults(func=cmd_fields)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    # Our own steps at INFO; the libraries underneath (papermill, nbconvert) only when they warn.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("tkgs_lib").setLevel(logging.INFO)
    # nbconvert warns on every report that matplotlib's figure has no alt text, which its lab
    # template cannot carry; that is noise to an operator.
    logging.getLogger("traitlets").setLevel(logging.ERROR)
    args = build_parser().parse_args(argv)
    early = interruption.early_signal()
    if args.command in ("run", "demo"):
        interruption.install()  # a closed terminal or a CI timeout ends a run as Ctrl-C does: cleanly
    else:
        for signum in interruption.STOPPING_SIGNALS:
            signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
    if early:
        print(f"interrupted: {early} arrived while tkgs-runbook started: nothing was changed.", file=sys.stderr)
        return 130
    try:
        status = args.func(args)
        sys.stdout.flush()  # a reader gone (`| head`) shows here, not as a traceback at exit
        return status
    except BrokenPipeError:
        return _reader_gone()
    except StageInterrupted as exc:
        print(f"interrupted: {exc}", file=sys.stderr)
        return 130
    except SiteError as exc:  # the site file itself cannot be read as a YAML mapping
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    except TkgsError as exc:  # one sentence a person can act on, never a traceback
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERRORS
    except KeyboardInterrupt as exc:
        print(f"interrupted: {str(exc) or 'Ctrl-C'} arrived before anything was changed.", file=sys.stderr)
        return 130
    finally:
        if args.command in ("run", "demo"):  # the work is over, its record kept: what is left is clean-up
            for signum in interruption.STOPPING_SIGNALS:
                signal.signal(signum, signal.SIG_IGN)
            interruption.checkpoint("exit")


if __name__ == "__main__":
    sys.exit(main())
