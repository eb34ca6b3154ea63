#!/usr/bin/env python3
"""Writes k8s/base/prometheusrule.yaml from the plain rule file k8s/base/alerts/proctor.rules.yml
(the one promtool checks), so the two never differ. scripts/test-ops checks they match."""
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "k8s/base/alerts/proctor.rules.yml"
OUT = ROOT / "k8s/base/prometheusrule.yaml"


def render() -> str:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    doc = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "proctor", "labels": {"release": "prometheus"}},
        "spec": {"groups": groups},
    }
    head = (
        "# Generated from alerts/proctor.rules.yml by scripts/ops/prometheusrule.py: edit that file,\n"
        "# then run `scripts/test-ops --write-prometheusrule`.\n"
    )
    return head + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)


if __name__ == "__main__":
    text = render()
    if "--check" in sys.argv:
        if OUT.read_text() != text:
            sys.exit(f"{OUT} differs from {RULES}: run scripts/test-ops --write-prometheusrule")
        print(f"{OUT.name} matches {RULES.name}")
    else:
        OUT.write_text(text)
        print(f"wrote {OUT}")
