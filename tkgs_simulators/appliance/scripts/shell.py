"""The bash the appliance's network scripts run in, as the simulated appliance plays them.

``routetablectl.sh`` and ``anyiproutectl.sh`` both set ``errexit``, ``nounset`` and ``pipefail``:
the first command that fails ends the script with its status (:class:`ScriptExit`), and so does
a variable read before it was set. What a script prints goes to its unit's journal. The commands
run are real (``ip``), and what bash itself decides is asked of a real bash, with the values as
its arguments (``printf '%d'`` reads ``010`` as 8 and writes 0 before it fails on ``x``; ``eval``
splits and expands a command line; ``echo -e`` reads escapes), so those edge cases are bash's own.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Callable, Iterator, NoReturn

__all__ = ["ScriptExit", "Shell", "Script", "XTrace", "bash_echo", "skipped", "ifs_comma", "awk_field"]


class ScriptExit(Exception):
    """The script stopped (errexit, nounset): its exit status."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def bash_echo(*words: str) -> str:
    """What bash's ``echo`` prints for ``words`` (its options, ``-e`` escapes and line break included)."""
    return subprocess.run(["bash", "-c", 'echo "$@"', "echo", *words], capture_output=True, text=True,
                          check=True).stdout


class XTrace:
    """What a script under ``set -x`` writes as it runs: before each simple command and assignment, a line
    of ``+`` (one more for each ``$(...)`` it runs in) and the command as bash quotes it; what the script
    prints on standard output goes between (a unit's ``2>&1 | tee -a`` puts both in one log). The
    quoting is a real bash's: each command is traced by bash itself, with the values as its words."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, int, tuple[str, ...]]] = []  # ("command"|"assign"|"output", depth, words)

    def command(self, depth: int, *words: str) -> None:
        self.entries.append(("command", depth, words))

    def assign(self, depth: int, name: str, value: str) -> None:
        self.entries.append(("assign", depth, (name, value)))

    def output(self, text: str) -> None:
        self.entries.append(("output", 0, (text,)))

    def text(self) -> str:
        """The trace, as the log holds it: every line ends with a line break."""
        traced = [e for e in self.entries if e[0] != "output"]
        words: list[str] = []
        script = ["PS4=$'\\x01+ '", "set -x"]
        for kind, _, items in traced:
            first = len(words)
            words += items if kind == "command" else items[1:]
            if kind == "command":
                script.append(": " + " ".join(f'"${{W[{i}]}}"' for i in range(first, len(words))))
            else:
                script.append(f'{items[0]}="${{W[{first}]}}"')
        result = subprocess.run(["bash", "-c", "mapfile -d '' -t W\n" + "\n".join(script)],
                                input="".join(f"{w}\0" for w in words), capture_output=True, text=True, check=True)
        shown = iter(result.stderr.split("\x01")[1:])
        out = []
        for kind, depth, items in self.entries:
            if kind == "output":
                out.append(items[0] if items[0].endswith("\n") else items[0] + "\n")
                continue
            line = next(shown)[2:]  # what follows "+ "
            out.append("+" * depth + " " + (line[2:] if kind == "command" else line))  # ": " dropped
        return "".join(out)


def skipped(line: str) -> bool:
    """``[ -z "${line}" ] || [ "${line::1}" == "#" ]``: an empty line, or one whose first character is ``#``."""
    return line == "" or line.startswith("#")


def ifs_comma(line: str) -> list[str]:
    """``IFS=, read -ra parts <<<"${line}"``: split on commas, nothing stripped, one trailing empty field dropped."""
    if line == "":
        return []
    parts = line.split(",")
    return parts[:-1] if len(parts) > 1 and parts[-1] == "" else parts


def awk_field(line: str, number: int) -> str:
    """``echo "${line}" | awk -F' ' '{print $N}'``: a single-space separator is awk's default (runs of blanks)."""
    fields = line.split()
    return fields[number - 1] if len(fields) >= number else ""


class Shell:
    """One run of a script: its name (as bash names it in its messages) and its unit's journal."""

    def __init__(self, script: str, say: Callable[[str], None]) -> None:
        self.script, self.say = script, say

    def echo2(self, text: str) -> None:
        self.say(text)

    def run(self, argv: list[str]) -> subprocess.CompletedProcess:
        """A command whose output the script captures (``$(...)``, ``< <(...)``): its stderr goes to the journal."""
        result = subprocess.run(argv, capture_output=True, text=True)
        if result.stderr.strip():
            self.say(result.stderr.strip())
        return result

    def ip(self, *args: str) -> subprocess.CompletedProcess:
        """A real ``ip`` command; what it prints goes to the journal, as a unit's output does."""
        result = self.run(["ip", *args])
        if result.stdout.strip():
            self.say(result.stdout.strip())
        return result

    def eval(self, command: str) -> subprocess.CompletedProcess:
        """``eval "${cmd}"``: the command line as bash splits and expands it (the values in it unquoted), under
        the script's errexit, nounset and pipefail."""
        result = self.run(["bash", "-euo", "pipefail", "-c", command])
        if result.stdout.strip():
            self.say(result.stdout.strip())
        return result

    def printf_append(self, path: Path, fmt: str, *args: str) -> subprocess.CompletedProcess:
        """``printf FMT ARGS... >>PATH``, by bash's printf: it writes what it could read and fails on a bad number."""
        with open(path, "a") as out:
            result = subprocess.run(["bash", "-c", 'printf "$@"', self.script, fmt, *args], stdout=out,
                                    stderr=subprocess.PIPE, text=True)
        if result.stderr.strip():
            self.say(result.stderr.strip())
        return result

    @staticmethod
    def errexit(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
        """``set -o errexit``: a command that fails ends the script with its status."""
        if result.returncode != 0:
            raise ScriptExit(result.returncode)
        return result

    def unbound(self, name: str) -> NoReturn:
        """``set -o nounset``: reading ``name`` (an array element past the end) ends the script."""
        self.say(f"/var/lib/vmware/{self.script}: {name}: unbound variable")
        raise ScriptExit(1)

    def part(self, parts: list[str], index: int, name: str = "line_parts") -> str:
        """``"${line_parts[N]}"`` under nounset."""
        if index >= len(parts):
            self.unbound(f"{name}[{index}]")
        return parts[index]

    def read_lines(self, path: Path) -> list[str]:
        """``while IFS= read -r line; do ...; done <PATH``: every line as it is; the text after the last
        line break is not a line (read fails on it); a missing file fails the redirection, and errexit
        ends the script."""
        try:
            text = path.read_text()
        except OSError:
            self.say(f"/var/lib/vmware/{self.script}: {path}: No such file or directory")
            raise ScriptExit(1) from None
        return text.split("\n")[:-1]

    def entries(self, path: Path) -> Iterator[str]:
        """The loop over ``path``'s lines with ``[ -z "${line}" ] || [ "${line::1}" == "#" ] && continue``."""
        for line in self.read_lines(path):
            if not skipped(line):
                yield line


class Script:
    """A played unit script: ``up`` and ``down``, as its unit's ExecStartPre and ExecStopPost run it, are its
    ``up_routes`` and ``down_routes``."""

    def __init__(self, sh: Shell) -> None:
        self.sh = sh

    def up(self) -> None:
        self.up_routes()

    def down(self) -> None:
        self.down_routes()

    def up_routes(self) -> None:
        raise NotImplementedError

    def down_routes(self) -> None:
        raise NotImplementedError
