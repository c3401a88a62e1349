"""Which commands a shell script runs inside a loop: enough of the shell's grammar to tell a
restart loop (`while true; do server; done`) from a readiness loop, a comment or a string.

The text is a claim (a `-c` argument or a script file) and hostile: nothing here raises on
any input, and nothing is evaluated. `tokens` splits POSIX/bash text into words and
operators (quotes, backslashes, comments, here-documents, `$(...)` and backticks);
`commands` walks them and says, for every simple command, whether a loop (`while`, `until`,
`for`, `select`) runs it on every pass, in its condition or its body, and in which function
it is defined. Keywords count only unquoted and in command position, as the shell reads
them. Own code: bashlex is GPL.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from ..record import mutable_record, record

TEXT_LIMIT = 256 * 1024  # longer text is not parsed: unknown
_NEST_LIMIT = 8  # $( $( ... ) ) and functions calling functions, as deep as this is read
_DEPTH_LIMIT = 64  # compound commands open at once; deeper text is unknown
_CHECK_LIMIT = 20_000  # commands compared, with the bodies of the functions they call
_PLAIN = re.compile(r"[^\s'\"\\$`;&|()<>#*?\[{~=]+")  # a run of characters with no meaning
_PARAMETER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9@*#?$!-]")  # after `$`
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\+?")  # before `=` in an assignment
_SEPARATORS = frozenset({";", "&", "&&", "||", "|", "|&", "\n"})
_CASE_ENDS = frozenset({";;", ";&", ";;&"})
_REDIRECTS = frozenset({"<", ">", ">>", "<<", "<<-", "<<<", "<&", ">&", "<>", ">|", "&>", "&>>"})
# Longest first: the tokenizer takes the first that matches.
_OPERATORS = (
    ";;&", "&>>", "<<-", "<<<", ";;", ";&", "&&", "||", "|&", "&>", "<<", ">>", "<&", ">&",
    "<>", ">|", ";", "&", "|", "(", ")", "<", ">",
)
_OPERATOR = re.compile("|".join(re.escape(o) for o in _OPERATORS))


@record
class Token:
    kind: str  # "word" or "op"
    text: str  # a word with its quotes removed (expansions kept as written); an operator
    literal: bool = True  # no expansion or glob: the shell passes `text` as it is
    quoted: bool = False  # some of it was quoted or escaped: never a keyword
    assign: bool = False  # NAME=value
    subs: tuple[str, ...] = ()  # the text of every $(...), `...`, <(...) inside it


@record
class Command:
    """One simple command: its words as the shell would see them before expansion."""

    words: tuple[Token, ...]
    loop: bool  # run on every pass of a loop (its condition or body)
    function: str | None  # defined in this function's body (run when it is called)


Word = str | None  # a command's word after expansion; None: unknown (an expansion)


def tokens(text: str) -> list[Token]:
    """Words and operators; a newline is the operator "\\n". Never raises."""
    return _Tokenizer(text).run()


def commands(text: str) -> list[Command] | None:
    """Every simple command of `text` (also inside $(...)), in order; None when its
    compound commands nest deeper than anyone writes them (or the text is too long)."""
    if len(text) > TEXT_LIMIT:
        return None
    out: list[Command] = []
    try:
        _walk(tokens(text), False, None, out, 0)
    except _TooDeep:
        return None
    return out


class _TooDeep(Exception):
    pass


def loop_runs(
    text: str, runs: Callable[[Sequence[Word]], bool], positional: Sequence[Word] = ()
) -> bool | None:
    """Does a loop in `text` run a command that `runs` accepts? `runs` gets the command's
    words after expansion of the positional parameters (`positional[0]` is $0) and after
    the prefixes that run the next word (assignments, `exec`, `command`, `env`, `nohup`,
    `time`, `nice`, `setsid`); a function called in a loop counts with every command of
    its body, run with the call's arguments. None when the text is too long or too deeply
    nested to read: unknown."""
    found = commands(text)
    if found is None:
        return None
    functions: dict[str, list[Command]] = {}
    for command in found:
        if command.function is not None:
            functions.setdefault(command.function, []).append(command)
    asked: set[tuple[str, tuple[Word, ...]]] = set()
    budget = [_CHECK_LIMIT]

    def check(command: Command, args: Sequence[Word], depth: int) -> bool:
        budget[0] -= 1
        if budget[0] < 0:
            return False  # hostile text: what is not read by now is unknown
        words = program_words(expand(command.words, args))
        if not words:
            return False
        if runs(words):
            return True
        name = words[0]
        if name is None or name not in functions or depth >= _NEST_LIMIT:
            return False
        call = (args[0] if args else None, *words[1:])
        if (name, call) in asked:
            return False
        asked.add((name, call))
        return any(check(c, call, depth + 1) for c in functions[name])

    return any(check(c, positional, 0) for c in found if c.loop)


def expand(words: Sequence[Token], positional: Sequence[Word]) -> list[tuple[Word, bool]]:
    """(word, is an assignment) per word; "$@", "$1" and the like become the shell's own
    arguments, any other expansion is unknown (None)."""
    out: list[tuple[Word, bool]] = []
    for word in words:
        text = word.text
        if word.literal:
            out.append((text, word.assign))
        elif text in ("$@", "${@}", "$*", "${*}"):
            out += [(arg, False) for arg in positional[1:]]
        elif (n := _positional(text)) is not None:
            if n < len(positional):
                out.append((positional[n], False))
        else:
            out.append((None, word.assign))
    return out


def _positional(text: str) -> int | None:
    digits = text[2:-1] if text.startswith("${") and text.endswith("}") else text[1:]
    if text.startswith("$") and digits.isascii() and digits.isdigit():
        return int(digits)
    return None


def program_words(words: Sequence[tuple[Word, bool]]) -> list[Word] | None:
    """The words from the program that runs on: past assignments and the prefixes that run
    their arguments. None: the command runs nothing (`command -v x`)."""
    i = 0
    n = len(words)
    while i < n:
        word, assign = words[i]
        if assign:
            i += 1
            continue
        if word == "exec":
            i = _options(words, i + 1, takes_value="a")
        elif word == "command":
            j = i + 1
            while j < n and (words[j][0] or "").startswith("-") and words[j][0] != "--":
                if any(c in (words[j][0] or "") for c in "vV"):
                    return None  # `command -v NAME` only says where NAME is
                j += 1
            i = j + 1 if j < n and words[j][0] == "--" else j
        elif word == "env":
            i = _options(words, i + 1, takes_value="uCS")
            while i < n and _is_assignment(words[i][0]):
                i += 1
        elif word in ("nohup", "time", "setsid"):
            i = _options(words, i + 1, takes_value="")
        elif word == "nice":
            i = _options(words, i + 1, takes_value="n")
        else:
            break
    return [w for w, _ in words[i:]]


def _options(words: Sequence[tuple[Word, bool]], i: int, takes_value: str) -> int:
    """Past `-x` options (and the value of those in `takes_value`) and a `--`."""
    while i < len(words):
        word = words[i][0]
        if word is None or not word.startswith("-") or word == "-":
            return i
        if word == "--":
            return i + 1
        if not word.startswith("--") and word[-1] in takes_value:
            i += 1  # `-a NAME`, `-n 10`: the value is the next word
        i += 1
    return i


def _is_assignment(word: Word) -> bool:
    if word is None or "=" not in word:
        return False
    return _NAME.fullmatch(word.partition("=")[0]) is not None


# ---------------------------------------------------------------------------------------
# Tokens


class _Tokenizer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.out: list[Token] = []
        self.heredocs: list[tuple[str, bool]] = []  # delimiters waiting for the next line
        self.unclosed = False  # a `((` never closed: no later one will (and scans stay linear)

    def run(self) -> list[Token]:
        text, n = self.text, len(self.text)
        while self.i < n:
            c = text[self.i]
            if c in " \t\r":
                self.i += 1
            elif c == "\\" and text.startswith("\\\n", self.i):
                self.i += 2  # a line continuation between words
            elif c == "\n":
                self.out.append(Token("op", "\n"))
                self.i += 1
                self._skip_heredocs()
            elif c == "#":  # a comment: only here, at the start of a word
                end = text.find("\n", self.i)
                self.i = n if end < 0 else end
            elif text.startswith("((", self.i) and self._arithmetic():
                pass
            elif c in "<>" and text.startswith("(", self.i + 1):
                self._word()  # <(cmd), >(cmd): a word, a process substitution
            elif c in ";&|()<>":
                self._operator()
            else:
                self._word()
        return self.out

    def _operator(self) -> None:
        found = _OPERATOR.match(self.text, self.i)
        op = found.group() if found else self.text[self.i]
        self.i += len(op)
        self.out.append(Token("op", op))
        if op in ("<<", "<<-"):
            self._heredoc(strip_tabs=op == "<<-")

    def _heredoc(self, *, strip_tabs: bool) -> None:
        """The delimiter word after `<<`: its body lines start after the next newline."""
        while self.i < len(self.text) and self.text[self.i] in " \t":
            self.i += 1
        if self.i >= len(self.text) or self.text[self.i] in "\n;&|()<>":
            return
        self._word()
        self.heredocs.append((self.out[-1].text, strip_tabs))

    def _skip_heredocs(self) -> None:
        text = self.text
        for delimiter, strip_tabs in self.heredocs:
            while self.i < len(text):
                end = text.find("\n", self.i)
                end = len(text) if end < 0 else end
                line = text[self.i : end]
                self.i = min(end + 1, len(text))
                if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                    break
        self.heredocs = []

    def _arithmetic(self) -> bool:
        """`((...))` (`for ((;;))`, `(( i++ ))`): one word; False if it never closes."""
        end = None if self.unclosed else _closing(self.text, self.i + 2, "(", ")", depth=2)
        if end is None:
            self.unclosed = True
            return False
        self.out.append(Token("word", self.text[self.i : end], literal=False))
        self.i = end
        return True

    def _word(self) -> None:
        text, n = self.text, len(self.text)
        start = self.i
        parts: list[str] = []
        subs: list[str] = []
        literal = True
        quoted = False
        assign = False
        i = self.i
        while i < n:
            c = text[i]
            plain = _PLAIN.match(text, i)
            if plain:
                parts.append(plain.group())
                i = plain.end()
                continue
            if c in " \t\r\n;&|)":
                break
            if c in "<>(":
                if i + 1 < n and text[i + 1] == "(" and c in "<>":
                    end = _closing(text, i + 2, "(", ")") or n
                    subs.append(text[i + 2 : end - 1])
                    parts.append(text[i:end])
                    literal = False
                    i = end
                    continue
                if c == "(" and assign and text[i - 1] == "=":  # arr=(a b c)
                    end = _closing(text, i + 1, "(", ")") or n
                    parts.append(text[i:end])
                    i = end
                    continue
                break
            if c == "\\":
                if text.startswith("\\\n", i):
                    i += 2
                    continue
                parts.append(text[i + 1 : i + 2] or "\\")
                quoted = True
                i += 2
            elif c == "'":
                end = text.find("'", i + 1)
                end = n if end < 0 else end
                parts.append(text[i + 1 : end])
                quoted = True
                i = end + 1
            elif c == '"':
                i, fixed = self._double(i + 1, parts, subs)
                quoted = True
                literal = literal and fixed
            elif c == "$":
                i, fixed = self._dollar(i, parts, subs)
                literal = literal and fixed
            elif c == "`":
                i = self._backtick(i, parts, subs)
                literal = False
            elif c == "=":
                if not quoted and literal and not assign and _NAME.fullmatch("".join(parts)):
                    assign = True
                parts.append(c)
                i += 1
            elif c == "~" and (i == start or text[i - 1] in "=:"):
                parts.append(c)
                literal = False  # the shell puts a home directory here
                i += 1
            else:  # * ? [ { # and the like inside a word
                if c in "*?[" or (c == "{" and "}" in text[i:i + 256]):
                    literal = False  # a glob or a brace expansion
                parts.append(c)
                i += 1
        self.i = max(i, start + 1)
        word = "".join(parts)
        if (
            not quoted and word.isascii() and word.isdigit()
            and self.i < n and text[self.i] in "<>"
        ):
            return  # `2>file`: the number belongs to the redirection
        self.out.append(Token("word", word, literal, quoted, assign, tuple(subs)))

    def _double(self, i: int, parts: list[str], subs: list[str]) -> tuple[int, bool]:
        """Inside "...": from after the opening quote to after the closing one."""
        text, n = self.text, len(self.text)
        literal = True
        while i < n:
            c = text[i]
            if c == '"':
                return i + 1, literal
            if c == "\\" and i + 1 < n and text[i + 1] in '$`"\\\n':
                if text[i + 1] != "\n":
                    parts.append(text[i + 1])
                i += 2
            elif c == "$":
                i, fixed = self._dollar(i, parts, subs)
                literal = literal and fixed
            elif c == "`":
                i = self._backtick(i, parts, subs)
                literal = False
            else:
                parts.append(c)
                i += 1
        return n, literal

    def _dollar(self, i: int, parts: list[str], subs: list[str]) -> tuple[int, bool]:
        """An expansion at `$`: its raw text goes into the word; literal only if none."""
        text, n = self.text, len(self.text)
        nxt = text[i + 1 : i + 2]
        if nxt == "(":
            end = _closing(text, i + 2, "(", ")") or n
            inner = text[i + 2 : end - 1]
            if not inner.startswith("("):  # $((arithmetic)) runs nothing
                subs.append(inner)
            parts.append(text[i:end])
            return end, False
        if nxt == "{":
            end = _closing(text, i + 2, "{", "}") or n
            parts.append(text[i:end])
            return end, False
        if nxt == "'":  # $'...': ANSI-C quoting, a literal
            j = i + 2
            while j < n and text[j] != "'":
                j += 2 if text[j] == "\\" else 1
            parts.append(text[i + 2 : min(j, n)])
            return min(j + 1, n), True
        name = _PARAMETER.match(text, i + 1)
        if name is None:
            parts.append("$")
            return i + 1, True
        parts.append("$" + name.group())
        return name.end(), False

    def _backtick(self, i: int, parts: list[str], subs: list[str]) -> int:
        text, n = self.text, len(self.text)
        j = i + 1
        while j < n and text[j] != "`":
            j += 2 if text[j] == "\\" else 1
        subs.append(text[i + 1 : min(j, n)])
        parts.append(text[i : min(j + 1, n)])
        return min(j + 1, n)


def _closing(text: str, i: int, opening: str, closing: str, depth: int = 1) -> int | None:
    """The index after the `closing` that balances `depth` open ones, skipping quoted text;
    None if the text ends first."""
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "'" and opening == "(":
            end = text.find("'", i + 1)
            if end < 0:
                return None
            i = end + 1
            continue
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            continue
        if c == opening:
            depth += 1
        elif c == closing:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None


# ---------------------------------------------------------------------------------------
# Commands


@mutable_record
class _Frame:
    kind: str  # cond, body, forhead, casehead, case, casepat, casecmd, if, group, sub
    function: str | None  # the function whose body this is in (inherited)
    loop: bool  # in a loop's condition or body (inherited)
    count: int = 0  # words seen in a for or case head
    separated: bool = False  # a for head reached `;` or a newline (its `do` may follow)


_KEYWORDS = frozenset({
    "while", "until", "for", "select", "do", "done", "if", "then", "elif", "else", "fi",
    "case", "esac", "{", "}", "!", "function", "in",
})


def _walk(
    toks: list[Token], outer_loop: bool, outer_function: str | None, out: list[Command],
    depth: int,
) -> None:
    """Append the commands of `toks` to `out`. A small state machine, not a full parser:
    wrong syntax yields odd commands, never an exception."""
    stack: list[_Frame] = []
    words: list[Token] = []
    command_position = True
    redirect = False
    naming_function = False
    function: str | None = None  # defined by `name()` or `function name`: its body is next

    def in_loop() -> bool:
        return stack[-1].loop if stack else outer_loop

    def current_function() -> str | None:
        return stack[-1].function if stack else outer_function

    def flush() -> None:
        if words:
            out.append(Command(tuple(words), in_loop(), current_function()))
            words.clear()

    def nested(tok: Token) -> None:
        if depth < _NEST_LIMIT:
            for sub in tok.subs:
                _walk(tokens(sub), in_loop(), current_function(), out, depth + 1)

    def pop_to(*kinds: str) -> None:
        for k in range(len(stack) - 1, -1, -1):
            if stack[k].kind in kinds:
                del stack[k:]
                return

    def push(kind: str) -> None:
        """Open a compound command; the body of a function just named, if one was."""
        nonlocal function
        if len(stack) >= _DEPTH_LIMIT:
            raise _TooDeep
        stack.append(_Frame(kind, function or current_function(), in_loop() or kind == "cond"))
        function = None

    for index, tok in enumerate(toks):
        top = stack[-1] if stack else None
        if tok.kind == "op":
            op = tok.text
            if op in _REDIRECTS:
                redirect = True
                continue
            redirect = False
            if top is not None and top.kind == "forhead":
                top.separated = top.separated or op in (";", "\n")
                continue
            if top is not None and top.kind in ("casehead", "casepat"):
                if op == ")" and top.kind == "casepat":
                    top.kind = "casecmd"
                    command_position = True
                continue
            if op in _CASE_ENDS:
                flush()
                pop_to("casecmd")
                if stack and stack[-1].kind == "case":
                    push("casepat")
                continue
            if op == "(":
                following = toks[index + 1] if index + 1 < len(toks) else None
                if following is not None and following.kind == "op" and following.text == ")":
                    if len(words) == 1:  # name() { ...; }
                        function = words[0].text
                        words.clear()
                    command_position = True
                    continue
                flush()
                push("sub")
                command_position = True
                continue
            if op == ")":
                if index > 0 and toks[index - 1].kind == "op" and toks[index - 1].text == "(":
                    continue  # the `()` of a function definition
                flush()
                pop_to("sub")
                command_position = False
                continue
            flush()
            command_position = op in _SEPARATORS
            continue

        if redirect:  # the file after `>`: not a command (but `< <(cmd)` runs cmd)
            redirect = False
            nested(tok)
            continue
        nested(tok)
        keyword = tok.text if not tok.quoted and tok.text in _KEYWORDS else None
        if top is not None and top.kind == "forhead":
            if keyword == "do" and (top.separated or top.count == 1 or _is_arith(toks, index)):
                top.kind = "body"
                top.loop = True
                command_position = True
            else:
                top.count += 1
            continue
        if top is not None and top.kind == "casehead":
            if keyword == "in" and top.count >= 1:
                top.kind = "case"
                push("casepat")
            top.count += 1
            continue
        if top is not None and top.kind == "casepat":
            if keyword == "esac":
                pop_to("case")
                command_position = False
            continue
        if naming_function:
            function = tok.text
            naming_function = False
            command_position = True
            continue
        if words or not command_position:
            if words:
                words.append(tok)
            continue
        if keyword in ("while", "until"):
            push("cond")
        elif keyword in ("for", "select"):
            push("forhead")
        elif keyword == "do":
            if top is not None and top.kind == "cond":
                top.kind = "body"
        elif keyword == "done":
            pop_to("body", "cond", "forhead")
            command_position = False
        elif keyword == "if":
            push("if")
        elif keyword == "fi":
            pop_to("if")
            command_position = False
        elif keyword == "case":
            push("casehead")
        elif keyword == "esac":
            pop_to("case")
            command_position = False
        elif keyword == "{":
            push("group")
        elif keyword == "}":
            pop_to("group")
            command_position = False
        elif keyword == "function":
            naming_function = True
        elif keyword in ("then", "elif", "else", "!", "in"):
            pass
        else:
            words.append(tok)
    flush()


def _is_arith(toks: list[Token], index: int) -> bool:
    """`for ((;;)) do`: the `do` right after the arithmetic head."""
    return index > 0 and toks[index - 1].kind == "word" and toks[index - 1].text.startswith("((")
