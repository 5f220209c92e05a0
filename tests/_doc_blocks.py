"""The code blocks of README.md and docs/**/*.md, as steps that tests/_doc_runner.py executes.

Pure Python (no JAX): tests/test_doc_examples.py imports it to build each
page's steps, and to count them.

What runs (README.md, docs/**/*.md, the notebooks docs/examples/*.ipynb and
results/README.md):

- a notebook's code cells, in order, in one namespace (no kernel: plain
  ``exec``, so a cell must be Python, without IPython magics);
- a ```python block: executed (``exec``) in one namespace per page, the
  page's blocks in order; a block with ``>>>`` prompts is run as a doctest
  in that namespace, so the outputs it prints are checked;
- a ```bash, ```sh or ```console block (in ```console, only lines that start
  with ``$``): each command, continuation lines joined, comments dropped.
  ``jepa-flow ARGS`` runs through ``jepa_flow._cli.main(ARGS)`` in the page's
  process and must exit 0; ``python scripts/X.py ARGS`` (or
  ``.venv/bin/python``) runs in that process too (``runpy``), a benchmark
  script in a subprocess; ``make ...`` is *not* run
  (make targets install a virtual environment; they are counted and listed),
  nor is ``source``;
- a ```toml block holding a ``[sweep]``, ``[train]`` or ``[validity]`` table: parsed by
  ``jepa_flow.parse_sweep_config`` (checked, not run).

An HTML comment on the line(s) just before a block changes how it runs:

- ``<!-- doctest: tiny -->``: long-running commands run at the small sizes of
  ``TINY`` below; benchmark scripts at the small sizes of
  scripts/bench_all.py (a format check);
- ``<!-- doctest: slow -->``: run only in the second tier (``pytest -m slow``);
- ``<!-- doctest: exit N -->``: every command of the block must exit with N
  (examples of refused input);
- ``<!-- doctest: skip REASON -->``: not run; the reason is required.

Any other command in a shell block, or an unlabelled block that holds
``jepa-flow`` commands, is an error of the page (tests/test_doc_examples.py
fails on it), so a new example cannot escape the tests.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHELL = ("bash", "sh", "console", "shell")
FENCE = re.compile(r"^(\s*)(`{3,})([\w+-]*)[^\n]*$")
DIRECTIVE = re.compile(r"<!--\s*doctest:\s*(.*?)\s*-->")

# Arguments appended to the commands of a block marked ``tiny``: the smallest
# run of the same code path. Later flags win in argparse, so ``--only 3``
# replaces a page's ``--only 3 8``: every experiment already runs at the tiny
# level in tests/test_reproduce.py, so the examples check the command itself,
# with the quickest experiment (3, the phase diagrams: about 1 s a run, against
# 7-8 s for experiment 5, which the eight examples ran before).
TINY = {
    "jepa-flow reproduce": ["--level", "tiny", "--only", "3"],
    "scripts/reproduce_paper.py": ["--level", "tiny", "--only", "3"],
}


def doc_pages(root: Path = ROOT) -> list[Path]:
    """README.md, every Markdown page and notebook of docs/ (docs/results is results/, a link)."""
    pages = [root / "README.md"]
    for pattern in ("*.md", "*.ipynb"):
        pages += sorted(
            p for p in (root / "docs").rglob(pattern) if "results" not in p.relative_to(root).parts
        )
    pages.append(root / "results" / "README.md")
    return pages


@dataclasses.dataclass
class Block:
    page: str
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    directives: list[str]

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    def _parsed(self) -> dict[str, str]:
        """Directive words: flags (``tiny``, ``slow``) map to "", ``exit N`` to N,
        ``skip REASON`` to the reason."""
        out = {}
        for d in self.directives:
            words = d.split()
            if words and words[0] == "skip":
                out["skip"] = " ".join(words[1:])
                continue
            while words:
                word = words.pop(0)
                out[word] = words.pop(0) if word == "exit" and words else ""
        return out

    def has(self, word: str) -> bool:
        return word in self._parsed()

    def value(self, word: str) -> str:
        return self._parsed().get(word, "")


def notebook_blocks(path: Path, root: Path = ROOT) -> list[Block]:
    """A notebook's code cells, as Python blocks (``line`` is the cell's number, from 1)."""
    cells = json.loads(path.read_text())["cells"]
    rel = path.relative_to(root).as_posix()
    return [
        Block(rel, i + 1, "python", "".join(cell["source"]) + "\n", [])
        for i, cell in enumerate(cells)
        if cell["cell_type"] == "code"
    ]


def blocks(path: Path, root: Path = ROOT) -> list[Block]:
    """Every fenced block of a Markdown page, with the directives just before it."""
    if path.suffix == ".ipynb":
        return notebook_blocks(path, root)
    lines = path.read_text().splitlines()
    out, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, ticks, lang = m.group(1), m.group(2), m.group(3).lower()
        directives, j = [], i - 1
        while j >= 0 and (d := DIRECTIVE.search(lines[j])):
            directives.insert(0, d.group(1))
            j -= 1
        body, k = [], i + 1
        while k < len(lines) and not lines[k].strip().startswith(ticks):
            body.append(lines[k][len(indent) :] if lines[k].startswith(indent) else lines[k])
            k += 1
        rel = path.relative_to(root).as_posix()
        out.append(Block(rel, i + 1, lang, "\n".join(body) + "\n", directives))
        i = k + 1
    return out


def shell_commands(block: Block) -> list[list[str]]:
    """The commands of a shell block as argument lists (comments dropped, ``\\`` joined)."""
    text = block.code
    if block.lang == "console":
        text = "\n".join(ln[1:].lstrip() for ln in text.splitlines() if ln.startswith("$"))
    text = re.sub(r"\\\n", " ", text)
    cmds = []
    for line in text.splitlines():
        argv = shlex.split(line, comments=True)
        if argv:
            cmds.append(argv)
    return cmds


def _script(argv: list[str]) -> str | None:
    """``scripts/X.py`` when argv runs a script with Python, else None."""
    if argv and Path(argv[0]).name.startswith("python") and len(argv) > 1:
        if argv[1].startswith("scripts/") and argv[1].endswith(".py"):
            return argv[1]
    return None


def _bench_small(script: str) -> list[str] | None:
    """The small-size arguments scripts/bench_all.py uses for a benchmark script."""
    name = Path(script).stem
    if not name.startswith("bench_") or name == "bench_all":
        return None
    import importlib.util

    spec = importlib.util.spec_from_file_location("_bench_all", ROOT / "scripts" / "bench_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.SCRIPTS[name][1])


@dataclasses.dataclass
class Step:
    """One thing the runner does: ``python`` (exec), ``doctest``, ``cli``, ``runpy`` (a
    script in the runner's process), ``script`` (a script in a subprocess)."""

    where: str
    kind: str
    code: str = ""
    argv: list[str] = dataclasses.field(default_factory=list)
    exit: int = 0

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Plan:
    """What one page does in one tier, and what it leaves out (with why)."""

    steps: list[Step] = dataclasses.field(default_factory=list)
    toml: list[Block] = dataclasses.field(default_factory=list)
    not_run: list[str] = dataclasses.field(default_factory=list)  # "where: command (why)"
    errors: list[str] = dataclasses.field(default_factory=list)
    blocks_run: int = 0  # python and shell blocks with at least one executed step


def _sized(argv: list[str], key: str) -> list[str]:
    return argv + TINY.get(key, [])


def plan(path: Path, tier: str = "fast", root: Path = ROOT) -> Plan:
    """The steps of one page in ``tier`` ("fast": the first tier; "slow": everything)."""
    p = Plan()
    for block in blocks(path, root):
        if block.has("skip"):
            if not block.value("skip"):
                p.errors.append(f"{block.where}: 'doctest: skip' needs a reason")
            p.not_run.append(f"{block.where}: skipped ({block.value('skip')})")
            continue
        if block.has("slow") and tier != "slow":
            p.not_run.append(f"{block.where}: second tier (pytest -m slow)")
            continue
        tiny = block.has("tiny")
        expect = int(block.value("exit") or 0) if block.has("exit") else 0
        if block.lang == "python":
            kind = "doctest" if re.search(r"^>>> ", block.code, re.MULTILINE) else "python"
            p.steps.append(Step(block.where, kind, code=block.code))
            p.blocks_run += 1
        elif block.lang in SHELL:
            ran = False
            for argv in shell_commands(block):
                step = _shell_step(block, argv, tiny, tier, expect, p)
                if step is not None:
                    p.steps.append(step)
                    ran = True
            p.blocks_run += ran
        elif block.lang == "toml":
            if re.search(r"^\[(sweep|train|validity)\]", block.code, re.MULTILINE):
                p.toml.append(block)
        elif block.lang == "" and re.search(r"^\s*(\$ )?jepa-flow ", block.code, re.MULTILINE):
            p.errors.append(f"{block.where}: an unlabelled block with jepa-flow commands (bash?)")
    return p


def _shell_step(block, argv, tiny, tier, expect, p: Plan) -> Step | None:
    where = block.where
    if argv[0] == "make":
        p.not_run.append(f"{where}: {' '.join(argv)} (make targets are not run by the tests)")
        return None
    if argv[0] == "source":
        return None
    if Path(argv[0]).name == "jepa-flow":
        args = argv[1:]
        if tiny and args:
            args = _sized(args, f"jepa-flow {args[0]}")
        return Step(where, "cli", argv=args, exit=expect)
    script = _script(argv)
    if script is not None:
        args = argv[2:]
        small = _bench_small(script)
        if tiny and small is None:
            args = _sized(args, script)
        if small is not None:
            if not (block.has("slow") or block.has("tiny")):
                p.errors.append(f"{where}: a benchmark must be marked 'doctest: tiny slow'")
            args = small + ["--json", "bench.json"]
            # benchmarks set JAX's environment before importing it: a process of their own
            return Step(where, "script", argv=[script, *args], exit=expect)
        return Step(where, "runpy", argv=[script, *args], exit=expect)
    p.errors.append(f"{where}: cannot run {' '.join(argv)!r} (mark the block 'doctest: skip ...')")
    return None
