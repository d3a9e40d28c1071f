"""The seam between the appliance stages and the appliance: run a command, get its result.

As pyinfra separates a fact's command from the pure function that parses its output, a
:class:`Fact` here is exactly that pair; :func:`gather` runs it through any
:class:`CommandRunner` and translates a failed command or an unreadable output into the error
tree. A real runner (SSH, with host keys checked) and :class:`RecordedRunner`, which answers from
recorded output so every parser is tested with no appliance at all, share this one interface,
as httpx's transports share ``handle_request``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Generic, Mapping, Protocol, TypeVar, Union

from ..errors import ApplianceError, CommandFailed

__all__ = ["CommandResult", "CommandRunner", "RecordedRunner", "Fact", "gather"]

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
    cannot (connection lost, timeout), never for a command that ran and failed."""

    def run(self, command: str, timeout: float = DEFAULT_TIMEOUT) -> CommandResult: ...


@dataclass
class RecordedRunner:
    """A CommandRunner that answers from recorded output: for tests, and for replaying what an
    appliance said. ``outputs`` maps a command to its result, or to its stdout (exit status 0)."""

    outputs: Mapping[str, Union[CommandResult, str]]
    ran: list[str] = field(default_factory=list)  # the commands asked for, in order

    def run(self, command: str, timeout: float = DEFAULT_TIMEOUT) -> CommandResult:
        self.ran.append(command)
        if command not in self.outputs:
            raise ApplianceError(f"no recorded output for `{command}` (recorded: {', '.join(self.outputs) or 'none'}).")
        answer = self.outputs[command]
        return answer if isinstance(answer, CommandResult) else CommandResult(command, 0, answer)


@dataclass(frozen=True)
class Fact(Generic[T]):
    """What a command tells about the appliance: ``command``, and ``parse`` of its stdout (pure)."""

    name: str  # what it is, for messages: "the interfaces"
    command: str
    parse: Callable[[str], T]
    ok_exit: tuple[int, ...] = (0,)  # exit statuses that mean the output is the answer


def gather(runner: CommandRunner, fact: Fact[T], timeout: float = DEFAULT_TIMEOUT) -> T:
    """Run ``fact``'s command through ``runner`` and parse its output.

    A command that fails is CommandFailed (with its result); output the parser cannot read is an
    ApplianceError naming the fact and the command, never a parser's traceback."""
    result = runner.run(fact.command, timeout)
    if result.exit_status not in fact.ok_exit:
        said = (result.stderr or result.stdout).strip().splitlines()
        raise CommandFailed(f"`{fact.command}` ({fact.name}) failed with exit status {result.exit_status}"
                            + (f": {said[-1]}" if said else "."), result)
    try:
        return fact.parse(result.stdout)
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise ApplianceError(f"the output of `{fact.command}` is not what reading {fact.name} expects "
                             f"({type(exc).__name__}: {exc}).") from None
