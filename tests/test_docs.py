"""README and docs/: what a user of the repository reads must be there and stay true."""
import re

from conftest import ROOT


def test_readme_and_docs_stand_alone():
    texts = {p: p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]}
    for name in ("problem-files.md", "api.md", "cli.md", "outputs.md"):
        assert ROOT / "docs" / name in texts, name
    for path, text in texts.items():
        assert "DESIGN.md" not in text, path           # users of the repository lack it
        for link in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
            if not link.startswith("http"):
                assert (path.parent / link).exists(), (path, link)
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_readme_commands_are_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    # the set-up section's two commands are the README's first two bash blocks
    commands = re.findall(r"```bash\n(.*?)\n```", readme, re.S)[:2]
    assert len(commands) == 2
    cpu = "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu && "
    assert all(c.startswith(cpu) for c in commands)
    assert commands[0].endswith("python scripts/solve.py problems/burgers.py")
    assert commands[1] in (ROOT / ".ci" / "run").read_text()


def test_architecture_lists_every_module_and_registry():
    import importlib
    text = (ROOT / "docs" / "architecture.md").read_text()
    tree = text.split("```")[1]
    missing = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "pinnkit").rglob("*.py"))
               if p.name not in tree]
    assert not missing, f"docs/architecture.md does not list {missing}"
    # every registry of the "adding a part" table exists where the table says
    rows = re.findall(r"^\| [^|]+ \| `(pinnkit/[\w/]+)\.py`[^|]* \| `(\w+)`", text, re.M)
    assert len(rows) >= 8
    assert {"FIRST_PHASES", "SECOND_PHASES", "WEIGHTINGS"} <= {name for _, name in rows}
    for path, name in rows:
        module = importlib.import_module(path.replace("/", "."))
        assert isinstance(getattr(module, name), dict), (path, name)
