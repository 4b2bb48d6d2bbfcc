"""The static code auditor: finds energy traps in inference and fine-tuning code.

It reads Python files, notebooks, requirements/pyproject files, YAML/JSON training configs and
install commands as text and AST; it never executes them. Rules live one per module under
advisor/audit/rules/ and register with advisor.audit.registry.rule; advisor.audit.engine walks
each file once and dispatches nodes to rules by type.

    from advisor.audit import Auditor, AuditSettings
    report = Auditor(AuditSettings(gpu="a800")).audit_paths(["train.py"])
"""

from __future__ import annotations

from advisor.audit.engine import Auditor
from advisor.audit.models import AuditReport, Diagnostic, Finding, Impact
from advisor.audit.registry import all_rules
from advisor.audit.settings import AuditSettings, SettingsError, load_settings

__all__ = ["Auditor", "AuditReport", "AuditSettings", "Diagnostic", "Finding", "Impact", "SettingsError",
           "all_rules", "load_settings"]
