"""The ``efficientbioai`` console script: ``compress``, ``infer``, ``stream``, ``train``, ``train-denoiser``, ...

``python efficientbioai/compress.py`` and ``python efficientbioai/inference.py`` call the same
functions. Errors a user can fix print as one line (no traceback) and exit with status 2.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from efficientbioai.api.bioimageio_export import export_bioimageio
from efficientbioai.api.infer import run_inference
from efficientbioai.api.stream import stream_input
from efficientbioai.compression.build_experiment import compress
from efficientbioai.config import load_config
from efficientbioai.errors import ConfigError, EfficientBioAIError
from efficientbioai.evaluation.camera_crlb import crlb_with_camera
from efficientbioai.evaluation.prune_sweep import sensitivity_sweep
from efficientbioai.evaluation.report import Report, describe_machine
from efficientbioai.evaluation.roofline import cache_file, ceilings, verdict
from efficientbioai.evaluation.selection import select_deployment
from efficientbioai.evaluation.tune import parse_duration, tune
from efficientbioai.io.frames import open_frames
from efficientbioai.registry import trainer_for
from efficientbioai.smlm.camera_estimate import MAX_FRAMES, estimate_camera
from efficientbioai.terminal import LogAboveBars
from efficientbioai.training.denoiser import train_denoiser

log = logging.getLogger("efficientbioai")

OUTPUT_HELP = "where to write the trained weights (default: a new file beside model.checkpoint, never over it)"
TRUST_HELP = "run artefacts whose SHA-256 differs from manifest.json (with a warning) instead of refusing"


#: What to do about an OS error a user can cause, by errno.
_OS_HINTS = {
    errno.EACCES: "no permission: choose a folder you can write, or fix its permissions",
    errno.EPERM: "not permitted: choose a folder you can write, or fix its permissions",
    errno.EROFS: "the file system is read-only: choose a writable folder (--exp_path / --output_dir)",
    errno.ENOSPC: "the disk is full: free space or choose a folder on another disk",
    errno.EDQUOT: "the disk quota is exceeded: free space or choose a folder on another disk",
    errno.EFBIG: "the file is larger than this process may write (file-size limit, ulimit -f): raise the "
    "limit or write to another file system",
    errno.ENOTDIR: "a part of the path is a file, not a folder: choose another path",
    errno.EISDIR: "the path is a folder, not a file",
    errno.ENOENT: "no such file or folder",
}


def user_message(exc: BaseException) -> str | None:
    """One line for a failure the user can fix (None: a bug, shown as a traceback).

    Our own errors carry their message; OS errors (permissions, read-only, disk full, a file
    where a folder should be) and failed allocations name the path and what to do.
    """
    if isinstance(exc, EfficientBioAIError):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno in _OS_HINTS:
        where = exc.filename or "a file this run writes"
        return f"{where}: {exc.strerror or os.strerror(exc.errno)} — {_OS_HINTS[exc.errno]}"
    if isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and "allocate" in str(exc)):
        first = str(exc).splitlines()[0][:200] if str(exc) else "out of memory"
        return (
            f"not enough memory ({first}); lower inference.tile, inference.batch_size or "
            "report.latency.batch_size, or runtime.chunk_frames for streamed stacks"
        )
    return None


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[LogAboveBars(show_path=False, rich_tracebacks=False, markup=False)],
        force=True,
    )
    for noisy in ("nncf", "codecarbon", "openvino", "onnxruntime", "root"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    if not verbose:  # ORT's quantizer logs through the root logger
        logging.getLogger().setLevel(logging.WARNING)
        logging.getLogger("efficientbioai").setLevel(logging.INFO)


def cmd_compress(args: argparse.Namespace) -> int:
    deploy = compress(args.config, args.exp_path, args.overwrite, args.calibration, finish=select_deployment)
    chosen = load_config(deploy).deployed_variant
    print(f"compressed model written to {deploy.parent}, deploying {chosen}")
    print(f"next: python efficientbioai/inference.py --config {deploy}")
    return 0


def cmd_infer(args: argparse.Namespace) -> int:
    variants = args.variants.split(",") if args.variants else None
    report = run_inference(
        args.config,
        variants=variants,
        output_dir=args.output_dir,
        resume=args.resume or None,
        trust_modified=args.trust_modified,
    )
    Report(report).print()
    print(f"report: {Path(report['experiment']) / 'report.md'}")
    return 0


def cmd_stream(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.cluster:
        config.runtime.cluster = args.cluster
    for path, stats in stream_input(
        args.config, args.input, args.output_dir, args.variant, args.resume, config, args.trust_modified
    ):
        print(f"{path}: {stats}")
    return 0


def cmd_train_denoiser(args: argparse.Namespace) -> int:
    out = train_denoiser(args.config, steps=args.steps, lr=args.lr, seed=args.seed, output=args.output)
    print(f"checkpoint written to {out}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    out = trainer_for(load_config(args.config).model.parser)(args.config, resume=args.resume, output=args.output)
    print(f"checkpoint written to {out} (training record: {out.with_suffix('.json')})")
    return 0


def cmd_camera(args: argparse.Namespace) -> int:
    def frames(path: str):
        source = open_frames(path)
        return source.read(0, min(len(source), MAX_FRAMES)) if source.ndim == 3 else source[None]

    dark = frames(args.dark) if args.dark else None
    est = estimate_camera(frames(args.input), dark, emccd=args.em_gain is not None)
    kind = f"EMCCD (EM gain {args.em_gain:g}, excess noise 2)" if args.em_gain else "sCMOS/CCD"
    print(f"{args.input}: {est.frames} frames, {est.levels} background levels, {kind}")
    print(
        f"  offset           {est.offset:10.2f} ± {est.offset_sd:.2f} ADU" + (" (dark frames)" if est.from_dark else "")
    )
    print(f"  ADU per electron {est.adu_per_electron:10.4f} ± {est.adu_per_electron_sd:.4f}")
    if est.read_sigma_adu is not None:
        print(f"  read noise       {est.read_sigma_adu:10.2f} ADU rms")
    block = {"acquisition": est.acquisition(args.em_gain, args.qe)}
    text = yaml.safe_dump(block, sort_keys=False)
    if args.output:
        Path(args.output).write_text(f"# efficientbioai camera --input {args.input}\n{text}")
        print(f"written to {args.output}: add it to the deploy.yaml (or config) of your SMLM model")
    else:
        print(text, end="")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    for path in export_bioimageio(args.exp, args.output_dir, args.variant, args.author, args.license):
        print(f"written: {path}")
    return 0


def cmd_machine(args: argparse.Namespace) -> int:
    result = ceilings(refresh=args.refresh)
    table = Table(title=f"Convolution ceilings — {describe_machine(result['machine'])}")
    for name in ("precision", "GFLOP/s", "× fp32", *(f"width {r['width']}" for r in result["per_width"])):
        table.add_column(name, justify="right")
    fp32 = result["ceilings_gflops"]["fp32"]
    for p, v in result["ceilings_gflops"].items():
        widths = [f"{r[p]:.1f}" if p in r else "–" for r in result["per_width"]]
        table.add_row(p, f"{v:.1f}", f"{v / fp32:.2f}×", *widths)
    console = Console()
    console.print(table)
    console.print(f"  {verdict(result)}.\n  {result['method']}; cached in {cache_file()}", style="dim", highlight=False)
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    seconds = parse_duration(args.time) if args.time else None
    record = tune(
        args.config, args.exp_path, seconds, tuple(args.prune_ratios), args.overwrite, tuple(args.prune_flops)
    )
    rows = record["candidates"]
    metrics = [t.split(" ")[0] for t in record["budget"]]
    table = Table(title=f"tune — {describe_machine(record['machine'])}")
    for name in ("candidate", "ms (median)", "× torch fp32", *metrics, "within budget"):
        table.add_column(name, justify="left" if name == "candidate" else "right", no_wrap=True)
    ref = rows[0]["latency"]["median_ms"]
    for r in rows:
        if "error" in r:
            table.add_row(r["variant"], "cannot run here", "–", *["–"] * len(metrics), "–", style="dim")
            continue
        scores = r.get("scores", {})
        within = "reference" if r is rows[0] else ("yes" if r.get("budget", {}).get("within") else "no")
        cells = [f"{scores[m]:.4g}" if m in scores else "–" for m in metrics]
        ms = r["latency"]["median_ms"]
        style = "bold" if r["variant"] == record["chosen"] else None
        table.add_row(r["variant"], f"{ms:.1f}", f"{ref / ms:.2f}×", *cells, within, style=style)
    console = Console(width=max(140, Console().width))
    console.print(table)
    groups = record["groups"]
    for kind in ("failed", "skipped_for_time"):
        if groups[kind]:
            console.print(f"  {kind.replace('_', ' ')}: {groups[kind]}", style="yellow", highlight=False)
    console.print(f"  {record['reason']}", highlight=False)
    print(f"deployed: {record['chosen']}")  # one plain line: rich wraps the reason and may ellipsize cells
    print(f"next: python efficientbioai/inference.py --config {Path(args.exp_path) / 'deploy.yaml'}")
    return 0


def cmd_crlb(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    variant = args.variant or (config.deployed_variant if config.artefacts else "torch:fp32")
    r = crlb_with_camera(config, Path(args.config).resolve().parent, variant, args.acquisition, args.frames)
    print(
        f"{r['frames']} frames simulated with your camera, localized with {variant}: Jaccard {r['jaccard']:.3f}, "
        f"lateral RMSE {r['rmse_lateral']:.1f} nm ({r['rmse_per_axis_over_crlb']:.2f}× the CRLB per axis, "
        f"mean CRLB {r['crlb_lateral_nm']:.1f} nm)\nplot: {r['plot']}"
    )
    return 0


def cmd_prune_sweep(args: argparse.Namespace) -> int:
    ratios = tuple(float(r) for r in args.ratios.split(","))
    if any(not 0 <= r < 0.95 for r in ratios):
        raise ConfigError(f"--ratios must lie in [0, 0.95); got {args.ratios}")
    rows = sensitivity_sweep(args.config, ratios, args.importance, args.fine_tune_steps, args.engine, args.samples)
    table = Table(title=f"Pruning sensitivity ({rows[0]['importance']}, {args.engine} fp32, {args.config})")
    for key in rows[0]:
        if key != "importance":
            table.add_column(key.replace("_", " "), justify="right")
    for row in rows:
        cells = [row[k] for k in row if k != "importance"]
        table.add_row(*[f"{c:,}" if isinstance(c, int) else "–" if c is None else f"{c:.4g}" for c in cells])
    Console(width=150).print(table)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="efficientbioai", description=__doc__.splitlines()[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="debug logging and full tracebacks")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("compress", parents=[common], help="export, quantize and build engine artefacts from a config")
    c.add_argument("--config", required=True, help="YAML config (see configs/)")
    c.add_argument("--exp_path", "--exp-path", required=True, help="folder to write the experiment into")
    c.add_argument("--overwrite", action="store_true", help="replace an existing --exp_path")
    c.add_argument(
        "--calibration",
        help="your raw images (file, folder or glob) to calibrate int8 on: sets data.calibration.source: files",
    )
    c.set_defaults(func=cmd_compress)

    i = sub.add_parser("infer", parents=[common], help="run a compressed experiment and report the comparison")
    i.add_argument("--config", required=True, help="deploy.yaml written by compress")
    i.add_argument("--variants", help="comma-separated subset, e.g. torch:fp32,openvino:int8")
    i.add_argument("--output_dir", "--output-dir", help="where predictions go (default <exp>/predictions)")
    i.add_argument("--resume", action="store_true", help="continue written outputs from their last finished chunk")
    i.add_argument("--trust-modified", action="store_true", help=TRUST_HELP)
    i.set_defaults(func=cmd_infer)

    st = sub.add_parser(
        "stream", parents=[common], help="run one large input through the deployed variant (no report), resumably"
    )
    st.add_argument("--config", required=True, help="deploy.yaml written by compress")
    st.add_argument(
        "--input",
        required=True,
        help="TIFF, .npy, .zarr, folder or glob: for image models each file is one image; "
        "SMLM and Deep-STORM read a folder of 2D frames as one movie",
    )
    st.add_argument("--output_dir", "--output-dir", help="default: inference.output_dir or <exp>/predictions")
    st.add_argument("--variant", help="default: the deployed variant")
    st.add_argument("--resume", action="store_true", help="continue an interrupted run from its last finished chunk")
    st.add_argument("--trust-modified", action="store_true", help=TRUST_HELP)
    st.add_argument("--cluster", help="'local' or a Dask scheduler address (overrides runtime.cluster)")
    st.set_defaults(func=cmd_stream)

    tr = sub.add_parser(
        "train", parents=[common], help="train a bundled model (DilatedLoc, Deep-STORM, Cellpose) on generated data"
    )
    tr.add_argument("--config", required=True, help="YAML with model, simulation and train sections")
    tr.add_argument("--resume", action="store_true", help="continue from model.checkpoint")
    tr.add_argument("--output", help=OUTPUT_HELP)
    tr.set_defaults(func=cmd_train)

    cam = sub.add_parser(
        "camera", parents=[common], help="estimate an SMLM camera's offset and gain from a stack (photon transfer)"
    )
    cam.add_argument("--input", required=True, help="raw frames: TIFF, .npy, zarr or a folder of frames")
    cam.add_argument("--dark", help="dark frames (shutter closed): offset and read noise from them")
    cam.add_argument("--em-gain", type=float, help="the EMCCD's EM gain setting (omit for sCMOS/CCD)")
    cam.add_argument("--qe", type=float, default=1.0, help="quantum efficiency at the emission wavelength")
    cam.add_argument("--output", help="write the acquisition block to this YAML file")
    cam.set_defaults(func=cmd_camera)

    ex = sub.add_parser("export", parents=[common], help="write a compressed experiment as bioimage.io packages")
    ex.add_argument("format", choices=["bioimageio"])
    ex.add_argument("--exp", required=True, help="the experiment folder (or its deploy.yaml)")
    ex.add_argument("--variant", default="onnxruntime:int8", help="the int8 variant of the second package")
    ex.add_argument("--output_dir", "--output-dir", help="default: the experiment folder")
    ex.add_argument("--author", default="EfficientBioAI", help="the packages' author")
    ex.add_argument("--license", default="BSD-3-Clause", help="an SPDX licence id for the weights")
    ex.set_defaults(func=cmd_export)

    tu = sub.add_parser(
        "tune", parents=[common], help="build many variants, time them here, deploy the fastest within the budget"
    )
    tu.add_argument("--config", required=True, help="the compress config (deploy.budget: the accuracy budget)")
    tu.add_argument("--exp_path", "--exp-path", required=True, help="experiment folder to write the chosen one into")
    tu.add_argument("--time", help="time budget for building candidates, e.g. 30m (checked between candidates)")
    tu.add_argument(
        "--prune-ratios",
        type=float,
        nargs="*",
        default=[0.25, 0.5],
        help="pruning ratios to try (none: pass the flag alone)",
    )
    tu.add_argument(
        "--prune-flops",
        type=float,
        nargs="*",
        default=[],
        help="also prune to these FLOP reductions, e.g. 2 4 (prune.flops_reduction)",
    )
    tu.add_argument("--overwrite", action="store_true", help="replace an existing experiment folder")
    tu.set_defaults(func=cmd_tune)

    ma = sub.add_parser("machine", parents=[common], help="this CPU's convolution ceilings per precision (cached)")
    ma.add_argument("--refresh", action="store_true", help="measure again (each ceiling keeps the higher value)")
    ma.set_defaults(func=cmd_machine)

    cr = sub.add_parser("crlb", parents=[common], help="SMLM: RMSE vs CRLB on frames simulated with your camera")
    cr.add_argument(
        "--config", required=True, help="deploy.yaml (or the model's config) with simulation and acquisition"
    )
    cr.add_argument("--acquisition", help="a YAML with the acquisition block (efficientbioai camera --output)")
    cr.add_argument("--variant", help="default: the deployed variant (torch:fp32 for a plain config)")
    cr.add_argument("--frames", type=int, default=200, help="frames to simulate")
    cr.set_defaults(func=cmd_crlb)

    sw = sub.add_parser("prune-sweep", parents=[common], help="accuracy, latency and size for pruning ratios 0 → 0.7")
    sw.add_argument("--config", required=True, help="the compress config (model, data, prune sections)")
    sw.add_argument("--importance", choices=["l1", "l2", "fpgm", "taylor"], help="default: prune.importance")
    sw.add_argument("--ratios", default="0,0.1,0.2,0.3,0.4,0.5,0.6,0.7")
    sw.add_argument("--fine-tune-steps", type=int, default=0, help="fine-tune each pruned model (0 = none)")
    sw.add_argument("--engine", default="openvino", choices=["openvino", "onnxruntime"])
    sw.add_argument("--samples", type=int, default=4, help="evaluation samples scored per ratio")
    sw.set_defaults(func=cmd_prune_sweep)

    t = sub.add_parser("train-denoiser", parents=[common], help="train a bundled MONAI denoiser on synthetic images")
    t.add_argument("--config", required=True)
    t.add_argument("--steps", type=int, default=1500)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--output", help=OUTPUT_HELP)
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(func=cmd_train_denoiser)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        resumable = args.command in ("infer", "stream")
        print(
            "interrupted: nothing half-written was kept under a final name"
            + ("; finished chunks are kept for --resume" if resumable else "; run the command again"),
            file=sys.stderr,
        )
        return 130
    except Exception as exc:
        message = user_message(exc)
        if message is None or args.verbose:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
