"""prefect.yaml (work pools) and flows/deployments.py (serve) declare the same deployments."""

from __future__ import annotations

from pathlib import Path

import yaml

from flows.deployments import SPECS, build_deployments

ROOT = Path(__file__).resolve().parents[3]


def test_prefect_yaml_declares_every_served_deployment_with_the_same_schedule() -> None:
    doc = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    declared = {(d["entrypoint"], d["name"]): d for d in doc["deployments"]}
    served = build_deployments()
    assert len(declared) == len(served) == len(SPECS)
    for spec, deployment in zip(SPECS, served, strict=True):
        entry = declared[(f"{spec.module}:{deployment.entrypoint.rsplit('.', 1)[1]}", spec.name)]
        assert entry["tags"] == list(spec.tags)
        assert entry["work_pool"]["name"] == "accountflow-process"
        schedule = (entry.get("schedules") or [{}])[0]
        assert schedule.get("cron") == spec.cron
        assert schedule.get("interval") == (int(spec.every.total_seconds()) if spec.every else None)


def test_entrypoints_are_module_paths_not_files() -> None:
    for deployment in build_deployments():
        assert deployment.entrypoint and deployment.entrypoint.startswith("flows.")
        assert "/" not in deployment.entrypoint and ".py" not in deployment.entrypoint
