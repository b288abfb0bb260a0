"""Learning-based synthesis end to end through the CLI on the phantom cohort, tiny presets.

Runs, as a user would (each step a separate `turingct` process)::

    turingct phantom --out OUT/phantom --n 8 --seed 0 --preset small --lesion-fraction 0.5
    turingct db upgrade --db OUT/t.db
    turingct data import --format atlas OUT/phantom --db OUT/t.db
    turingct train autoencoder --preset tiny --from-catalog --db OUT/t.db --out OUT/ae
    turingct train difftumor --organ liver --autoencoder OUT/ae/final.pt --preset tiny ...
        (stopped with SIGINT after --interrupt-after seconds, then re-run: resumes)
    turingct train tumorgen --organ liver --autoencoder OUT/ae/final.pt --preset tiny ...
    turingct synth --method difftumor|tumorgen ... (--samples seeds each)
    turingct synth batch --method tumorgen --from-catalog --n 2 ...
    turingct synth preview DIR --out DIR.png

and prints the Markdown rows of benchmarks/RESULTS.md ("Generative"): loss curves (first and
last logged loss, steps, training seconds from the checkpoint, wall seconds of the command) and
seconds per `turingct synth` sample. Everything is also written to OUT/summary.json.
Re-running resumes: the phantom cohort, the import and finished trainings are reused.

    python benchmarks/train_tiny.py --out /tmp/gen [--steps-ae 200 --interrupt-after 40]
"""

from __future__ import annotations

import argparse
import csv
import json
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "import sys; from turingct.cli import main; sys.exit(main())"]


def run(args: list[str], *, interrupt_after: float | None = None) -> tuple[int, float, str]:
    """Run one `turingct` command; returns (exit code, wall seconds, output).

    ``interrupt_after``: send SIGINT (what Ctrl-C sends) after that many seconds.
    """
    print("$ turingct " + " ".join(args), flush=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [*CLI, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # a background parent may ignore SIGINT; the child must not
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    if interrupt_after is not None:
        try:
            proc.wait(timeout=interrupt_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate()
    wall = time.perf_counter() - t0
    tail = [line for line in out.replace("\r", "\n").splitlines() if line.strip()][-3:]
    print("  " + "\n  ".join(tail) + f"\n  -> exit {proc.returncode}, {wall:.1f} s", flush=True)
    return proc.returncode, wall, out


def checked(args: list[str]) -> float:
    code, wall, out = run(args)
    if code != 0:
        raise SystemExit(f"command failed ({code}): turingct {' '.join(args)}\n{out[-2000:]}")
    return wall


def loss_curve(train_dir: Path) -> dict:
    """First / last logged loss, steps and training seconds of one training directory."""
    import torch

    with open(train_dir / "loss.csv", newline="") as handle:
        rows = [{k: float(v) for k, v in r.items() if v} for r in csv.DictReader(handle)]
    payload = torch.load(train_dir / "final.pt", map_location="cpu", weights_only=False)
    last = rows[-3:]  # mean of the last three logged steps: single batches are noisy
    terms = [k for k in rows[0] if k not in ("step", "seconds")]
    return {
        "steps": int(payload["step"]),
        "train_seconds": float(payload["train_seconds"]),
        "first": {k: rows[0][k] for k in terms},
        "last3_mean": {k: statistics.fmean(r[k] for r in last) for k in terms},
        "logged_rows": len(rows),
    }


def train(
    method: str, out: Path, common: list[str], extra: list[str], interrupt_after: float | None
) -> dict:
    args = ["train", method, *common, "--out", str(out / method), "--no-progress", *extra]
    record: dict = {"wall_seconds": 0.0}
    if (out / method / "final.pt").is_file():
        print(f"{method}: already trained, reusing {out / method / 'final.pt'}")
    else:
        if interrupt_after is not None and not (out / method / "last.pt").exists():
            code, wall, text = run(args, interrupt_after=interrupt_after)
            record["wall_seconds"] += wall
            if code == 130:
                import torch

                step = torch.load(out / method / "last.pt", map_location="cpu", weights_only=False)[
                    "step"
                ]
                record["interrupted_at_step"] = int(step)
        code, wall, text = run(args)
        if code != 0:
            raise SystemExit(f"{method} training failed:\n{text[-2000:]}")
        record["wall_seconds"] += wall
        resumed = [line for line in text.splitlines() if "resumed" in line]
        if resumed:
            record["resume_log"] = resumed[0].strip()
    record.update(loss_curve(out / method))
    return record


def synth_samples(method: str, out: Path, seeds: list[int]) -> dict:
    case = out / "phantom" / "phantom_0000"
    rows = []
    for seed in seeds:
        dest = out / f"synth_{method}_{seed}"
        wall = checked(
            [
                "synth",
                "--method",
                method,
                "--checkpoint",
                str(out / method / "final.pt"),
                "--organ",
                "liver",
                "--ct",
                str(case / "ct.nii.gz"),
                "--organ-mask",
                str(case / "segmentations" / "liver.nii.gz"),
                "--out",
                str(dest),
                "--seed",
                str(seed),
            ]
        )
        prov = json.loads((dest / "provenance.json").read_text())
        rows.append(
            {
                "seed": seed,
                "cli_wall_s": wall,
                "runtime_s": prov["runtime_s"],
                "synthesize_s": prov["info"]["seconds"],
                "model_s": prov["info"]["model_seconds"],
                "sampling_steps": prov["sampling_steps"],
                "checkpoint_hash": prov["checkpoint_hash"],
                "tumor_voxels": prov["tumor"]["voxels"],
                "hu_contrast": prov["tumor"]["hu_contrast"],
            }
        )
        checked(["synth", "preview", str(dest), "--out", str(dest) + ".png"])
    med = {
        k: statistics.median(r[k] for r in rows)
        for k in ("cli_wall_s", "runtime_s", "synthesize_s", "model_s")
    }
    return {"samples": rows, "median": med}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/gen"))
    parser.add_argument("--n", type=int, default=8, help="phantom cases (default 8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--interrupt-after",
        type=float,
        default=45.0,
        help="SIGINT the DiffTumor training after this many seconds (0: never)",
    )
    parser.add_argument("--samples", type=int, default=3, help="synth seeds per method")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="METHOD:KEY=VALUE",
        help="e.g. tumorgen:train.steps=200",
    )
    args = parser.parse_args()
    out: Path = args.out.resolve()
    db = str(out / "t.db")
    checked(
        [
            "phantom",
            "--out",
            str(out / "phantom"),
            "--n",
            str(args.n),
            "--seed",
            str(args.seed),
            "--preset",
            "small",
            "--lesion-fraction",
            "0.5",
            "--no-progress",
        ]
    )
    checked(["db", "upgrade", "--db", db])
    checked(["data", "import", "--format", "atlas", str(out / "phantom"), "--db", db])

    def sets(method: str) -> list[str]:
        return [
            a
            for o in args.overrides
            if o.startswith(method + ":")
            for a in ("--set", o.split(":", 1)[1])
        ]

    summary: dict = {"train": {}, "synth": {}}
    catalog = ["--from-catalog", "--db", db, "--organ", "liver", "--preset", "tiny"]
    summary["train"]["autoencoder"] = train("autoencoder", out, catalog, sets("autoencoder"), None)
    ae = ["--autoencoder", str(out / "autoencoder" / "final.pt")]
    summary["train"]["difftumor"] = train(
        "difftumor", out, [*catalog, *ae], sets("difftumor"), args.interrupt_after or None
    )
    summary["train"]["tumorgen"] = train("tumorgen", out, [*catalog, *ae], sets("tumorgen"), None)
    seeds = list(range(1, args.samples + 1))
    for method in ("difftumor", "tumorgen"):
        summary["synth"][method] = synth_samples(method, out, seeds)
    t = checked(
        [
            "synth",
            "batch",
            "--method",
            "tumorgen",
            "--checkpoint",
            str(out / "tumorgen" / "final.pt"),
            "--from-catalog",
            "--db",
            db,
            "--organ",
            "liver",
            "--n",
            "2",
            "--out",
            str(out / "batch_tg"),
            "--seed",
            "2",
        ]
    )
    summary["synth"]["tumorgen_batch_2_wall_s"] = t
    (out / "summary.json").write_text(json.dumps(summary, indent=2))

    print(
        "\n| model | steps | first loss | last loss (mean of last 3 logged) | train s | "
        "s / step | command wall s |\n|---|---|---|---|---|---|---|"
    )
    for name, r in summary["train"].items():
        first = ", ".join(f"{k} {v:.4g}" for k, v in r["first"].items())
        last = ", ".join(f"{k} {v:.4g}" for k, v in r["last3_mean"].items())
        print(
            f"| {name} | {r['steps']} | {first} | {last} | {r['train_seconds']:.0f} | "
            f"{r['train_seconds'] / r['steps']:.2f} | {r['wall_seconds']:.0f} |"
        )
    print(
        "\n| method | steps | samples | `turingct synth` wall s | runtime_s (load+synth+write) "
        "| synthesize s | model s |\n|---|---|---|---|---|---|---|"
    )
    for name in ("difftumor", "tumorgen"):
        r = summary["synth"][name]
        m = r["median"]
        print(
            f"| {name} | {r['samples'][0]['sampling_steps']} | {len(r['samples'])} | "
            f"{m['cli_wall_s']:.1f} | {m['runtime_s']:.2f} | {m['synthesize_s']:.2f} | "
            f"{m['model_s']:.2f} |"
        )
    for name, r in summary["train"].items():
        if "interrupted_at_step" in r:
            print(
                f"\n{name}: SIGINT stopped it at step {r['interrupted_at_step']}; "
                f"re-run: {r.get('resume_log', '(no resume line)')}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
