"""
`make compat`: the built wheel on every Airflow 3 that users run, installed as the services install it.

Builds the wheel and the sdist (and checks them with ``twine check --strict``), then for each target
creates a fresh virtual environment with the target's Python, installs Airflow and the built wheel
(not the source tree) with the target's constraints exactly as the service applies them
(``pip install -r requirements.txt -c <essential> -c <constraints>``, both MWAA files; Composer's
image's pins for 3.1.7), and runs
``tests/compat/check.py`` with that environment's Python: the provider is registered, the connection
form metadata is complete, every module imports without pytest, the example DAGs parse, and
``hf_endpoint_lifecycle`` and ``hf_nightly_batch`` run green against the emulator with the sensor
deferred, and six waits defer together in a real triggerer (``airflow standalone``); on 3.4, what it
adds: a task loop inside ``endpoint_window`` (one resume, every iteration, one close), a window inside a
loop refused, and a create refused for capacity rescheduled by ``reschedule_on_capacity()``. pip's
cache (``.cache/pip``) makes reruns fast. Prints the matrix and the wall time per target.

Each target's log shows the versions pip resolved for Airflow's core dependencies, and what moved
since the target last passed (``tests/compat/resolved/``, written by ``--record``): a target that
breaks for a reason outside the provider names the package that moved.

    .venv/bin/python tests/compat/run.py [--only 3.0.6-mwaa ...] [--keep DIR] [--record]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).parents[2]
HERE = Path(__file__).parent
CONSTRAINTS = HERE / "constraints"
#: per target, the versions of Airflow's core dependencies when it last passed (``--record`` writes them)
RESOLVED = HERE / "resolved"
PYTHONS = {"3.11": "python3.11", "3.12": "python3.12", "3.13": "python3.13"}
#: the newest Airflow 3.4 on the registry: a pre-release until 3.4.0 is published (then this line says 3.4.0)
AIRFLOW_3_4 = "3.4.0b2"


@dataclass(frozen=True)
class Target:
    """
    One environment a user runs.

    :param name: how the matrix names it.
    :param python: its Python (MWAA runs 3.12; Composer 3 runs 3.11).
    :param requirements: what is installed beside the wheel (Airflow itself, what the service has).
    :param constraints: constraint files applied with ``-c``, in the service's order.
    :param skip: checks of ``check.py`` not run here (another target runs them on the same Airflow).
    """

    name: str
    python: str
    requirements: tuple[str, ...]
    constraints: tuple[str, ...] = field(default=())
    skip: tuple[str, ...] = field(default=())


TARGETS = (
    # MWAA's images ship the FAB provider (its WTForms describes the 3.0/3.1 connection form).
    Target(
        "3.0.6-mwaa",
        "3.12",
        ("apache-airflow==3.0.6", "apache-airflow-providers-fab"),
        ("mwaa-essential-3.0.6.txt", "mwaa-3.0.6.txt"),
    ),
    # Cloud Composer's composer-3-airflow-3.1.7 preinstalls common-compat 1.13.1 and the FAB provider,
    # over Airflow's own constraints for 3.1.7 (the file says how it was made): an image's packages are
    # pinned, so a release after it (cryptography 51) never reaches a Composer user.
    Target(
        "3.1.7-composer",
        "3.11",
        (
            "apache-airflow==3.1.7",
            "apache-airflow-providers-common-compat==1.13.1",
            "apache-airflow-providers-fab",
        ),
        ("composer-3.1.7.txt",),
    ),
    Target("3.2.1-mwaa", "3.12", ("apache-airflow==3.2.1",), ("mwaa-essential-3.2.1.txt", "mwaa-3.2.1.txt")),
    Target("3.3.1-mwaa", "3.12", ("apache-airflow==3.3.1",), ("mwaa-essential-3.3.1.txt", "mwaa-3.3.1.txt")),
    # The newest 3.3, as a new user installs it: no constraints, pip's own resolution.
    Target("3.3.2", "3.11", ("apache-airflow==3.3.2",)),
    # 3.4 as a new user installs it, on Python 3.12 and 3.13 (which 3.3 and later support); what 3.4
    # adds (task loops, rescheduling retry policies) is Python's business on neither: checked once.
    Target("3.4-py3.12", "3.12", (f"apache-airflow=={AIRFLOW_3_4}",)),
    Target("3.4-py3.13", "3.13", (f"apache-airflow=={AIRFLOW_3_4}",), skip=("airflow_3_4",)),
)


def python_for(version: str) -> str:
    """
    The interpreter of a Python version: pyenv's (not its shims), else one on PATH, else uv's.

    uv downloads its builds from GitHub, which a machine limited to package registries cannot reach:
    there pyenv's (the CI machines carry 3.11 to 3.13) or the system's is the one found.
    """
    pyenv = sorted(Path.home().glob(f".pyenv/versions/{version}.*/bin/python"))
    if pyenv:
        return str(pyenv[-1])
    found = shutil.which(PYTHONS[version])
    if found and "/shims/" not in found:
        return found
    uv = str(Path(sys.executable).parent / "uv")
    done = subprocess.run([uv, "python", "install", version], capture_output=True, text=True, check=False)
    if done.returncode == 0:
        return subprocess.run(
            [uv, "python", "find", "--managed-python", version], capture_output=True, text=True, check=True
        ).stdout.strip()
    raise SystemExit(
        f"no Python {version} found (~/.pyenv, PATH, or `uv python install {version}`: "
        f"{done.stderr.strip().splitlines()[-1] if done.stderr.strip() else 'failed'}); the compat targets need it"
    )


def build(dist: Path) -> Path:
    """Build the wheel and the sdist from the tree; check both as PyPI would; return the wheel."""
    bin_dir = Path(sys.executable).parent
    shutil.rmtree(dist, ignore_errors=True)
    subprocess.run([str(bin_dir / "uv"), "build", "--quiet", "--out-dir", str(dist), str(ROOT)], check=True)
    [wheel], [sdist] = dist.glob("*.whl"), dist.glob("*.tar.gz")
    subprocess.run([str(bin_dir / "twine"), "check", "--strict", str(wheel), str(sdist)], check=True)
    return wheel


def install(target: Target, wheel: Path, venv: Path, log: Path) -> float:
    started = time.monotonic()
    subprocess.run([python_for(target.python), "-m", "venv", str(venv)], check=True)
    requirements = venv / "requirements.txt"
    requirements.write_text("\n".join([*target.requirements, str(wheel)]) + "\n")
    command = [str(venv / "bin" / "pip"), "install", "--disable-pip-version-check", "-r", str(requirements)]
    for constraint in target.constraints:
        command += ["-c", str(CONSTRAINTS / constraint)]
    env = {**os.environ, "PIP_CACHE_DIR": str(ROOT / ".cache" / "pip")}
    with log.open("w") as out:
        done = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        lines = [line for line in log.read_text().splitlines() if not line.startswith("WARNING: Location")]
        raise RuntimeError(f"{target.name}: install failed:\n" + "\n".join(lines[-30:]))
    return time.monotonic() - started


# Run by a target's own Python: the version installed of every requirement of Airflow's core packages
# (apache-airflow, -core, -task-sdk) that applies there, and of the provider's.
_RESOLVED_SCRIPT = """
import json
from importlib.metadata import PackageNotFoundError, requires, version
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
found = {}
for top in ("apache-airflow", "apache-airflow-core", "apache-airflow-task-sdk", "airflow-provider-hfep"):
    try:
        if top != "airflow-provider-hfep":  # its own version moves with every change here
            found[top] = version(top)
    except PackageNotFoundError:
        continue
    for line in requires(top) or []:
        requirement = Requirement(line)
        if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
            continue
        try:
            found[canonicalize_name(requirement.name)] = version(requirement.name)
        except PackageNotFoundError:
            pass
print(json.dumps(dict(sorted(found.items()))))
"""


def resolved(venv: Path) -> dict[str, str]:
    """Which versions pip chose for Airflow's core dependencies in a target's environment."""
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", _RESOLVED_SCRIPT], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def moved(target: Target, versions: dict[str, str]) -> list[str]:
    """
    Say what moved since the target last passed (its record): where to look first when it breaks.

    A target without constraints (a new user's install) moves with every release of a dependency; a
    break there that the provider did not cause shows up here as the package that moved.
    """
    record = RESOLVED / f"{target.name}.txt"
    if not record.exists():
        return ["(no record yet: run with --record once it passes)"]
    before = dict(line.split("==", 1) for line in record.read_text().split() if "==" in line)
    return [
        f"{name} {before.get(name, '(new)')} -> {versions.get(name, '(gone)')}"
        for name in sorted(before.keys() | versions.keys())
        if before.get(name) != versions.get(name)
    ]


def check(target: Target, venv: Path, scratch: Path) -> dict:
    scratch.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '')}"
    env["AIRFLOW_HOME"] = str(scratch / "airflow-home")
    env["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    command = [
        str(venv / "bin" / "python"),
        str(HERE / "check.py"),
        "--examples",
        str(ROOT / "example_dags"),
        "--scratch",
        str(scratch),
        *(argument for check in target.skip for argument in ("--skip", check)),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    (scratch / "check.log").write_text(done.stdout + done.stderr)
    lines = done.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        return {"error": (done.stdout + done.stderr)[-3000:]}


#: checks that only some Airflow versions have something to look at (check.py leaves them out elsewhere)
VERSION_CHECKS = {"airflow_3_4": "n/a"}


def cell(report: dict, check: str) -> str:
    """One cell of the matrix: ok, FAILED, or why the check does not apply to the target's Airflow."""
    if check in VERSION_CHECKS and check not in report and "error" not in report and "install" not in report:
        return VERSION_CHECKS[check]  # not on this Airflow, or left to another target (Target.skip)
    return "ok" if (report.get(check) or {}).get("ok") else "FAILED"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="*", help="target names (default: all)")
    parser.add_argument("--keep", type=Path, help="keep the environments and logs here")
    parser.add_argument(
        "--record", action="store_true", help="write the resolved versions of each passing target"
    )
    args = parser.parse_args()
    targets = [t for t in TARGETS if not args.only or t.name in args.only]
    started = time.monotonic()
    work = args.keep or Path(tempfile.mkdtemp(prefix="hfep-compat-"))
    work.mkdir(parents=True, exist_ok=True)
    rows, failed = [], []
    try:
        wheel = build(work / "dist")
        print(f"built {wheel.name} and its sdist; twine check --strict passed")
        for target in targets:
            venv, scratch = work / target.name, work / f"{target.name}-scratch"
            shutil.rmtree(venv, ignore_errors=True)
            shutil.rmtree(scratch, ignore_errors=True)
            target_started = time.monotonic()
            try:
                installed = install(target, wheel, venv, work / f"{target.name}-install.log")
            except RuntimeError as exc:
                failed.append(target.name)
                rows.append((target, None, {"install": str(exc)}, time.monotonic() - target_started))
                print(exc)
                continue
            versions = resolved(venv)
            report = check(target, venv, scratch)
            ok = "error" not in report and all(v.get("ok") for v in report.values() if isinstance(v, dict))
            if not ok:
                failed.append(target.name)
            wall = time.monotonic() - target_started
            rows.append((target, installed, report, wall))
            print(
                f"{target.name}: installed in {installed:.0f} s, checked in {wall - installed:.0f} s; {'ok' if ok else 'FAILED'}"
            )
            print("    resolved: " + " ".join(f"{name}=={version}" for name, version in versions.items()))
            print("    moved since it last passed: " + ("; ".join(moved(target, versions)) or "nothing"))
            for key, value in report.items():
                print(f"    {key}: {value}")
            if ok and args.record:
                RESOLVED.mkdir(exist_ok=True)
                lines = [f"{name}=={version}" for name, version in versions.items()]
                (RESOLVED / f"{target.name}.txt").write_text("\n".join(lines) + "\n")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    columns = (
        "registered",
        "connection_form",
        "imports",
        "examples_parse",
        "examples_run",
        "triggerer",
        "airflow_3_4",
    )
    print(
        "\n| target | Python | install (constraints) | "
        + " | ".join("3.4 features" if c == "airflow_3_4" else c.replace("_", " ") for c in columns)
        + " | wall time |"
    )
    print("|---" * (4 + len(columns)) + "|")
    for target, installed, report, wall in rows:
        cells = [cell(report, k) for k in columns]
        install_cell = (
            "FAILED" if installed is None else f"ok ({len(target.constraints)} files, {installed:.0f} s)"
        )
        print(
            f"| {target.name} | {target.python} | {install_cell} | "
            + " | ".join(cells)
            + f" | {wall:.0f} s |"
        )
    print(
        f"\ncompat: {len(rows) - len(failed)} of {len(rows)} targets passed in {time.monotonic() - started:.0f} s"
    )
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
