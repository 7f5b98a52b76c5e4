"""Edits after creation: suspend/resume is passed on; any other spec change is reported, never applied."""

from __future__ import annotations

from typing import Any

import kopf

from speedrun_operator import metrics, reconcile
from speedrun_operator.api import GROUP, PLURAL, VERSION


@kopf.on.field(GROUP, VERSION, PLURAL, field="spec.suspend")
def suspend_changed(body: kopf.Body, new: Any, old: Any, memo: kopf.Memo, **_: Any) -> None:
    if old is None and new is None:
        return
    with metrics.RECONCILE_SECONDS.labels(handler="suspend_changed").time():
        reconcile.suspend_changed(memo.context, dict(body), bool(new))


@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
def spec_changed(body: kopf.Body, diff: kopf.Diff, memo: kopf.Memo, **_: Any) -> None:
    changed = sorted({".".join(str(p) for p in ("spec", *item[1])) for item in diff} - {"spec.suspend"})
    if changed:
        reconcile.spec_changed(memo.context, dict(body), changed)
