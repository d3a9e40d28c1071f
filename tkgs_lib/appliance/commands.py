"""The seam between the appliance stages and the appliance: run a command, get its result.

As pyinfra separates a fact's command from the pure function that parses its output, a
:class:`Fact` here is exactly that pair; :func:`gather` runs it through any
:class:`CommandRunner` and translates a failed command or an unreadable output into the error
tree. A real runner (SSH, with host keys checked) and :class:`RecordedRunner`, which answers from
recorded output so every parser is tested with no appliance at all, share this one interface,
as httpx's transports share ``handle_request``.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from typing import Callable, Generic, Mapping, Optional, Protocol, TypeVar, Union

from .. import effects
from ..errors import ApplianceError, CommandFailed, SessionLost

__all__ = ["CommandResult", "CommandRunner", "RecordedRunner", "Fact", "gather", "gather_many", "value_or_problem",
           "run_batch", "batch_script", "run_change", "shown_command"]

T = TypeVar("T")
DEFAULT_TIMEOUT = 30.0  # seconds; every command on the appliance has one


@dataclass(frozen=True)
class CommandResult:
    command: str
    exit_status: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


class CommandRunner(Protocol):
    """Runs one command on the appliance and returns its result; raises ApplianceError when it
    cannot (connection lost, timeout), never for a command that ran and failed. ``input``: what the
    command reads on its standard input (a secret goes there, never into the command's words)."""

    def run(self, command: str, timeout: float = DEFAULT_TIMEOUT, input: Optional[str] = None) -> CommandResult: ...


@dataclass
class RecordedRunner:
    """A CommandRunner that answers from recorded output: for tests, and for replaying what an
    appliance said. ``outputs`` maps a command to its result, or to its stdout (exit status 0)."""

    outputs: Mapping[str, Union[CommandResult, str]]
    ran: list[str] = field(default_factory=list)  # the commands asked for, in order

    def run(self, command: str, timeout: float = DEFAULT_TIMEOUT, input: Optional[str] = None) -> CommandResult:
        self.ran.append(command)
        if command not in self.outputs:
            raise ApplianceError(f"no recorded output for `{command}` (recorded: {', '.join(self.outputs) or 'none'}).")
        answer = self.outputs[command]
        return answer if isinstance(answer, CommandResult) else CommandResult(command, 0, answer)

    def run_batch(self, commands: list[str], timeout: float = DEFAULT_TIMEOUT) -> list[CommandResult]:
        """Each of ``commands``, answered from the recording (what :func:`gather_many` asks for)."""
        return [self.run(command, timeout) for command in commands]


@dataclass(frozen=True)
class Fact(Generic[T]):
    """What a command tells about the appliance: ``command``, and ``parse`` of its stdout (pure)."""

    name: str  # what it is, for messages: "the interfaces"
    command: str
    parse: Callable[[str], T]
    ok_exit: tuple[int, ...] = (0,)  # exit statuses that mean the output is the answer
    empty_when: str = ""  # what the command says on standard error when there is nothing to read (an empty answer)


def shown_command(command: str) -> str:
    """A command as a sentence names it: its first line, cut (a batch read is a whole script)."""
    first = command.strip().splitlines()[0] if command.strip() else ""
    if first.startswith("# "):  # a script that says what it is on its first line
        return first[2:]
    return first if len(first) <= 80 and "\n" not in command.strip() else first[:77] + "..."


def run_change(runner: CommandRunner, command: str, timeout: float = DEFAULT_TIMEOUT,
               input: Optional[str] = None) -> CommandResult:
    """Run ``command``, which changes the appliance, entered on the ledger first: done when it exits 0,
    refused when it exits otherwise (the command ran and said no), unknown when the session was lost
    meanwhile (it may have run, in part). ``input`` (a secret, say) goes to its standard input and never
    to the ledger."""
    ledger = effects.current()
    entry = ledger.enter(f"the appliance {getattr(runner, 'host', '')}".rstrip(), f"`{shown_command(command)}`")
    try:
        result = runner.run(command, timeout) if input is None else runner.run(command, timeout, input=input)
    except SessionLost as exc:
        ledger.close(entry, effects.UNKNOWN, exc.message)
        raise
    except ApplianceError as exc:  # no session to send it on
        ledger.close(entry, effects.NOT_SENT, exc.message)
        raise
    said = (result.stderr or result.stdout).strip().splitlines()
    ledger.close(entry, effects.DONE if result.ok else effects.REFUSED,
                 "" if result.ok else f"exit status {result.exit_status}" + (f": {said[-1]}" if said else ""))
    return result


def gather(runner: CommandRunner, fact: Fact[T], timeout: float = DEFAULT_TIMEOUT) -> T:
    """Run ``fact``'s command through ``runner`` and parse its output.

    A command that fails is CommandFailed (with its result); output the parser cannot read is an
    ApplianceError naming the fact and the command, never a parser's traceback."""
    return _parsed(fact, runner.run(fact.command, timeout))


def gather_many(runner: CommandRunner, facts: Mapping[str, Fact], timeout: float = DEFAULT_TIMEOUT
                ) -> dict[str, Union[object, ApplianceError]]:
    """Every fact of ``facts`` in one command on the appliance: each is its parsed value, or the
    ApplianceError that reading it met (as :func:`gather` would raise it).

    One exec instead of one per fact: on a link where a round trip is what a command costs, a read
    of the whole appliance costs what one command does. The facts' commands run side by side
    (they only read), each with its own standard output, standard error and exit status, which
    come back base64-framed on one line each, so nothing a command prints can be mistaken for
    another's. A runner that cannot do it (the connection lost) raises, as for one command."""
    names = list(facts)
    commands = [facts[name].command for name in names]
    batch = getattr(runner, "run_batch", None)  # a recording answers each command itself
    results = batch(commands, timeout) if batch is not None else run_batch(runner, commands, timeout)
    values: dict[str, Union[object, ApplianceError]] = {}
    for name, result in zip(names, results):
        fact = facts[name]
        if result is None:
            values[name] = ApplianceError(f"`{fact.command}` ({fact.name}) gave no answer in the batch read.")
            continue
        try:
            values[name] = _parsed(fact, result)
        except ApplianceError as exc:
            values[name] = exc
    return values


def value_or_problem(read: Mapping[str, Union[object, ApplianceError]], name: str, problems: dict[str, str]):
    """The value :func:`gather_many` read for ``name``; None when reading it failed, and why kept in ``problems``."""
    got = read.get(name)
    if isinstance(got, ApplianceError):
        problems[name] = got.message
        return None
    return got


def run_batch(runner: CommandRunner, commands: list[str], timeout: float = DEFAULT_TIMEOUT
              ) -> list[Optional[CommandResult]]:
    """``commands`` in one exec of :func:`batch_script`: each one's result (None for one the script's
    output does not answer, which only a script cut short leaves)."""
    if not commands:
        return []
    token = f"tkgs-fact-{secrets.token_hex(6)}"
    result = runner.run(batch_script(token, commands), timeout)
    framed: dict[int, CommandResult] = {}
    for line in result.stdout.splitlines():
        parts = line.split(" ")
        if len(parts) == 5 and parts[0] == token and parts[1].isdigit() and \
                parts[2].lstrip("-").isdigit() and int(parts[1]) < len(commands):
            try:
                out, err = (base64.b64decode(p, validate=True).decode("utf-8", errors="replace") for p in parts[3:])
            except ValueError:
                continue
            index = int(parts[1])
            framed[index] = CommandResult(commands[index], int(parts[2]), out, err)
    return [framed.get(i) for i in range(len(commands))]


def batch_script(token: str, commands: list[str]) -> str:
    """A POSIX shell script running ``commands`` side by side in a private temporary folder (removed
    on exit), then printing ``<token> <index> <exit status> <stdout, base64> <stderr, base64>`` per command."""
    # The line break before `)` ends a command whose last word is a comment.
    run = "".join(f"( ( {command}\n) >\"$d/{i}.out\" 2>\"$d/{i}.err\" </dev/null; echo $? >\"$d/{i}.rc\" ) &\n"
                  for i, command in enumerate(commands))
    show = (f"for i in {' '.join(str(i) for i in range(len(commands)))}; do "
            f"printf '%s %s %s %s\\n' {token} \"$i\" \"$(cat \"$d/$i.rc\")\" "
            f"\"$(base64 -w0 <\"$d/$i.out\") $(base64 -w0 <\"$d/$i.err\")\"; done")
    return (f"# the batch read of {len(commands)} facts\nd=$(mktemp -d) || exit 97\ntrap 'rm -rf \"$d\"' EXIT\n" + run
            + "wait\n" + show + "\n")


def _parsed(fact: Fact[T], result: CommandResult) -> T:
    if result.exit_status not in fact.ok_exit and fact.empty_when and fact.empty_when in result.stderr:
        return fact.parse("")
    if result.exit_status not in fact.ok_exit:
        said = (result.stderr or result.stdout).strip().splitlines()
        raise CommandFailed(f"`{fact.command}` ({fact.name}) failed with exit status {result.exit_status}"
                            + (f": {said[-1]}" if said else "."), result)
    try:
        return fact.parse(result.stdout)
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise ApplianceError(f"the output of `{fact.command}` is not what reading {fact.name} expects "
                             f"({type(exc).__name__}: {exc}).") from None
