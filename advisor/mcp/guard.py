"""The path guard: the MCP audit tool reads files only inside one directory tree."""

from __future__ import annotations

import os
from pathlib import Path

from advisor.limits import MAX_AUDIT_FILES
from advisor.mcp.inputs import ToolError


class PathGuard:
    """Confines file access to one directory tree.

    A path is refused when it names anything outside the root: `..` that climbs out, an absolute
    path elsewhere, or a symlink (of the file or of a folder on the way) whose target lies
    outside. The refusal does not say whether the outside path exists. Folders are walked without
    following links, honouring the auditor's default excludes and .gitignore files.
    """

    def __init__(self, root: Path | str):
        given = Path(root).expanduser()
        if not given.is_dir():
            raise ToolError(f"root '{root}' is not a directory")
        self.given = Path(os.path.abspath(given))
        self.root = given.resolve(strict=True)

    def _inside(self, p: Path) -> bool:
        return p == self.root or p.is_relative_to(self.root)

    def resolve(self, raw: str) -> Path:
        if "\x00" in raw:
            raise ToolError("path contains a NUL byte")
        p = Path(raw)
        lexical = Path(os.path.normpath(p if p.is_absolute() else self.given / p))
        if not (lexical == self.given or lexical.is_relative_to(self.given) or self._inside(lexical)):
            raise ToolError(self._refusal(raw))
        try:
            real = lexical.resolve(strict=True)
        except (FileNotFoundError, NotADirectoryError):
            raise ToolError(f"no file or folder '{raw}' under the server's root {self.given}") from None
        except (OSError, RuntimeError) as err:  # symlink loops, permissions
            raise ToolError(f"cannot read '{raw}': {err.__class__.__name__}") from None
        if not self._inside(real):
            raise ToolError(self._refusal(raw))
        return real

    def _refusal(self, raw: str) -> str:
        return (f"path '{raw}' is outside the server's root {self.given}; the audit tool reads only files "
                "under it (start the server with `ecolobster mcp --root DIR` to choose another), "
                "or pass the source as 'code'")

    def display(self, real: Path) -> str:
        rel = real.relative_to(self.root).as_posix()
        return rel if rel != "." else "."

    def source_files(self, real: Path) -> tuple[list[Path], list[str]]:
        """The files the auditor reads at `real` (a file, or a folder walked without following
        links), and notes about what was left out for lying outside the root."""
        from advisor.api import DEFAULT_EXCLUDES, IgnoreRules, real_path
        from advisor.api import source_kind as kind_for

        if real.is_file():
            if kind_for(real.name) is None:
                raise ToolError(f"'{self.display(real)}' is not a file type the auditor reads; accepted: .py, "
                                ".ipynb, requirements*.txt, pyproject.toml, .yaml/.yml, .json, .sh, Dockerfile, "
                                "or a folder")
            return [real], []
        rules = IgnoreRules()
        rules.extend(list(DEFAULT_EXCLUDES))
        files: list[Path] = []
        skipped: list[str] = []
        for dirpath, dirnames, filenames in os.walk(real, followlinks=False):
            here = Path(dirpath)
            rel = here.relative_to(real).as_posix()
            rel = "" if rel == "." else rel
            gitignore = here / ".gitignore"
            gi_real = real_path(gitignore)
            if gi_real is not None and gitignore.is_file() and self._inside(gi_real):
                rules.extend(gitignore.read_text(encoding="utf-8", errors="replace").splitlines(), rel)
            kept = []
            for d in sorted(dirnames):
                drel = f"{rel}/{d}" if rel else d
                if rules.ignored(drel, True):
                    continue
                if (here / d).is_symlink():  # never followed; say so when it leads outside
                    target = real_path(here / d)
                    if target is None or not self._inside(target):
                        skipped.append(f"{self.display(here / d)}: a link to outside the root, not read")
                    continue
                kept.append(d)
            dirnames[:] = kept
            for name in sorted(filenames):
                frel = f"{rel}/{name}" if rel else name
                if kind_for(name) is None or rules.ignored(frel, False):
                    continue
                f = here / name
                target = real_path(f)
                if target is None:
                    skipped.append(f"{self.display(f)}: a symlink loop, not read")
                    continue
                if not self._inside(target):
                    skipped.append(f"{self.display(f)}: a link to outside the root, not read")
                    continue
                files.append(f)
                if len(files) > MAX_AUDIT_FILES:
                    raise ToolError(f"'{self.display(real)}' holds more than {MAX_AUDIT_FILES} files the auditor "
                                    "reads; audit a smaller folder")
        if not files:
            raise ToolError(f"no file the auditor reads under '{self.display(real)}' (Python, notebooks, "
                            "requirements, pyproject, YAML/JSON configs, shell scripts, Dockerfiles)")
        return files, skipped
