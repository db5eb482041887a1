"""What the live dashboard costs: a refresh against run length, the training thread, a replay.

1. Refresh cost against run length. A real `Monitor` (on two tiny modules whose hooks
   never fire) receives a synthetic run flush by flush, 50 steps a flush, up to `--steps`:
   each flush goes the way `Monitor.flush` ends, `monitor.history.append(records)` and then
   `monitor._deliver(records)` to the callbacks, which are the live diagnosis
   (`gandiag.detect.watch`, as `attach(diagnose=True)` wires it) and a `Dashboard`. What is
   bypassed: the hooks, the device buffer and its decoding into `Records`, and histograms
   (the figure draws none). The keys are those of a run with `--layers` layers per model;
   values are noisy losses and logit statistics, log-normal gradient norms with rare 50x
   spikes, `metric/*` every 500 steps, and one NaN G loss every `--nan-every` steps (each
   one a `nonfinite` alert; the detectors find a few more on their own). At 1e3, 1e4, 1e5
   and 1e6 steps it times `build_figure(history, alerts)` with and without the alerts, and
   `Dashboard.refresh()` without and with the alerts; each timing follows a fresh flush
   (plotly sends nothing for an unchanged array), median of up to `--repeats`. The
   dashboard's refresher thread is stopped first, so the timed `refresh()` is the only one
   touching the figure (plotly #5691); with no front end the FigureWidget still builds and
   serializes its messages (they go to a `DummyComm`, where they are counted). Then `build_figure` on the final
   history with 0, 10, 20, 40 synthetic alerts (`--sweep`).
2. The training thread: the time each consumer takes per flush (the dashboard's only sets
   an event), and a toy GAN's `Trainer.fit` (`models.small_toy()` on `data.ring()`, one
   torch thread, 3 000 steps) plain, under `Dashboard(trainer, refresh_seconds=0.5).train()`,
   and plain beside a dashboard on part 1's long run that its flushes wake every 0.5 s,
   without and with that run's alerts (the refresher shares the GIL with training).
3. Replay: the same records written by `RunWriter` (one commit per flush, as a live run
   that the writer keeps up with), with part 1's alerts, then `open_run` and
   `build_figure(run, run.alerts())`, split into reading and building, and
   `Dashboard.from_run` (the same plus a FigureWidget).

    python benchmarks/dashboard_refresh.py                         # ~20 min on 2 shared cores
    python benchmarks/dashboard_refresh.py --parts 2                # only the training check
    python benchmarks/dashboard_refresh.py --steps 20000 --replay-steps 20000 --train-steps 500
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import statistics
import tempfile
import time
import warnings
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn

import gandiag
from gandiag.detect import watch
from gandiag.detect.diagnosis import series_of
from gandiag.core.records import Records
from gandiag.store import RunWriter
from gandiag.widgets.dashboard import Dashboard
from gandiag.widgets.figures import build_figure

BLOCK = 10_000  # steps generated at once (a multiple of the flush size)


# ---- a synthetic run -------------------------------------------------------------------
def synthetic_block(rng: np.random.Generator, start: int, n: int, layers: int,
                    nan_every: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Steps start+1 .. start+n of every key, as a run with `layers` layers per model."""
    s = np.arange(start + 1, start + n + 1, dtype=np.int64)
    noise = lambda scale: scale * rng.standard_normal(n)  # noqa: E731
    drift = 0.1 * np.sin(2 * np.pi * s / 50_000)
    g_loss = 0.9 - drift + noise(0.15)
    if nan_every:
        g_loss[(s % nan_every) == nan_every // 2] = np.nan
    out = {"D/loss": (s, 1.2 + drift + noise(0.08)), "G/loss": (s, g_loss)}
    for slot, level in (("D/out_real", 0.6), ("D/out_fake", -0.5), ("G/out_fake", -0.4)):
        mean = level + drift + noise(0.2)
        out[f"{slot}/mean"] = (s, mean)
        out[f"{slot}/std"] = (s, np.exp(noise(0.1)))
        out[f"{slot}/sign"] = (s, np.clip(np.tanh(mean) + noise(0.05), -1, 1))
        out[f"{slot}/acc"] = (s, np.clip((0.6 if "real" in slot else 0.45) + noise(0.05), 0, 1))
    for role in ("D", "G"):
        squares = np.zeros(n)
        for i in range(layers):
            norm = np.exp(np.log(0.5) - 0.2 * i + noise(0.4))
            norm[rng.random(n) < 1e-5] *= 50.0  # a rare spike
            out[f"{role}/grad_norm/layer{i}"] = (s, norm)
            squares += norm ** 2
        out[f"{role}/grad_norm/total"] = (s, np.sqrt(squares))
    at = s[s % 500 == 0]
    m = len(at)
    out["metric/modes"] = (at, np.clip(8 - rng.poisson(0.3, m), 0, 8).astype(np.float64))
    out["metric/hq"] = (at, np.clip(0.7 + 0.05 * rng.standard_normal(m), 0, 1))
    out["metric/reverse_kl"] = (at, np.abs(0.1 + 0.03 * rng.standard_normal(m)))
    return out


def flushes(steps: int, layers: int, nan_every: int, flush_every: int = 50,
            seed: int = 0) -> Iterator[Records]:
    """The run as `Records` batches of `flush_every` steps (the same run for one seed)."""
    rng = np.random.default_rng(seed)
    for start in range(0, steps, BLOCK):
        block = synthetic_block(rng, start, min(BLOCK, steps - start), layers, nan_every)
        for lo in range(start, min(start + BLOCK, steps), flush_every):
            scalars = {}
            for key, (s, v) in block.items():
                a, b = np.searchsorted(s, [lo + 1, lo + flush_every + 1])
                if b > a:
                    scalars[key] = (s[a:b], v[a:b])
            yield Records(scalars=scalars)


# ---- timing helpers --------------------------------------------------------------------
def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    result = fn()
    return time.perf_counter() - began, result


class Timed(gandiag.Callback):
    """A callback wrapper that keeps the seconds each `on_records` took."""

    def __init__(self, callback: gandiag.Callback) -> None:
        self.callback, self.seconds = callback, []

    def on_records(self, host: Any, records: Records) -> None:
        began = time.perf_counter()
        self.callback.on_records(host, records)
        self.seconds.append(time.perf_counter() - began)


def count_messages(figure: Any) -> list:
    """Keep every message the FigureWidget sends (state, buffers) in the returned list."""
    sent: list = []
    send = figure.comm.send

    def recording(data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        sent.append((data, buffers))
        send(data=data, metadata=metadata, buffers=buffers)

    figure.comm.send = recording
    return sent


def message_bytes(sent: list) -> tuple[int, int]:
    """(binary buffer bytes, JSON bytes) of the recorded messages."""
    binary = sum(memoryview(b).nbytes for _, buffers in sent for b in (buffers or []))
    text = sum(len(json.dumps(data, default=str)) for data, _ in sent)
    return binary, text


def figure_stats(fig: Any) -> dict[str, int]:
    """Traces, the most points in one trace, bytes of the numeric arrays, shapes."""
    arrays = [trace[f] for trace in fig.data for f in ("x", "y", "z")
              if f in trace and isinstance(trace[f], np.ndarray)]
    points = [len(trace.x) for trace in fig.data if trace.type == "scatter" and trace.x is not None]
    return {"traces": len(fig.data), "max_points": max(points, default=0),
            "array_bytes": sum(a.nbytes for a in arrays), "shapes": len(fig.layout.shapes)}


# ---- 1. refresh cost against run length ------------------------------------------------
def long_run_monitor() -> tuple[gandiag.Monitor, Any, Dashboard]:
    """A Monitor on two tiny modules (hooks never fire), the live diagnosis, a Dashboard
    whose refresher thread is stopped (refresh() is called here)."""
    monitor = gandiag.attach(nn.Linear(4, 2), nn.Linear(2, 1), leak_check_steps=0)
    monitor.diagnosis = watch(monitor, warn=False)
    dash = Dashboard(monitor, refresh_seconds=0.5)
    dash._closed.set()
    dash._new_records.set()
    dash._refresher.join()
    return monitor, monitor.diagnosis, dash


def feed(monitor: gandiag.Monitor, records: Records) -> None:
    """What Monitor.flush does after decoding the device buffer."""
    monitor.history.append(records)
    monitor.step = int(records.steps[-1])
    monitor._deliver(records)


def checkpoint(monitor: gandiag.Monitor, dash: Dashboard, source: Iterator[Records],
               repeats: int, budget: float) -> dict[str, Any]:
    """Median times of build_figure (without, with alerts) and refresh() (without, with
    alerts), each after a fresh flush."""
    plain, alerted, at = [], [], monitor.step
    began = time.perf_counter()
    for _ in range(repeats):
        feed(monitor, next(source))
        alerts = list(monitor.diagnosis.alerts)
        plain.append(timed(lambda: build_figure(monitor.history, []))[0])
        seconds, fig = timed(lambda: build_figure(monitor.history, alerts))
        alerted.append(seconds)
        if time.perf_counter() - began > budget:
            break
    quiet, _ = refreshes(monitor, dash, source, repeats, budget, alerts=False)
    refresh, sent = refreshes(monitor, dash, source, repeats, budget, alerts=True)
    return {"step": at, "alerts": len(alerts), "build": statistics.median(plain),
            "build_alerts": statistics.median(alerted), "refresh_quiet": quiet, "refresh": refresh,
            "sent": sent, "history_bytes": monitor.history.nbytes, **figure_stats(fig)}


def refreshes(monitor: gandiag.Monitor, dash: Dashboard, source: Iterator[Records], repeats: int,
              budget: float, *, alerts: bool) -> tuple[float, tuple[int, int]]:
    """Median seconds of dash.refresh() after a fresh flush, and the bytes the last one
    sent; without `alerts` the dashboard finds none (it reads monitor.alerts).
    A first, untimed refresh settles the set of traces (the alerts marker comes or goes)."""
    announced, sent, times = monitor.alerts, count_messages(dash.figure), []
    if not alerts:
        monitor.alerts = []
    try:
        feed(monitor, next(source))
        dash.refresh()
        began = time.perf_counter()
        for _ in range(repeats):
            feed(monitor, next(source))
            del sent[:]
            times.append(timed(dash.refresh)[0])
            if time.perf_counter() - began > budget:
                break
    finally:
        monitor.alerts = announced
    return statistics.median(times), message_bytes(sent)


def refresh_vs_length(args: argparse.Namespace, *,
                      timings: bool = True) -> tuple[gandiag.Monitor, list[dict], dict]:
    """Feed the long run; at each checkpoint (with `timings`) time the figure's costs."""
    monitor, diagnosis, dash = long_run_monitor()
    timed_callbacks = monitor.callbacks[:] = [Timed(c) for c in monitor.callbacks]  # diagnosis, dashboard
    marks = [m for m in (1_000, 10_000, 100_000, 1_000_000, args.steps) if m <= args.steps and timings]
    source = flushes(args.steps + 50 * (3 * args.repeats + 2) * len(marks), args.layers, args.nan_every)
    rows, feeding = [], 0.0
    for records in source:
        feeding += timed(lambda: feed(monitor, records))[0]
        if marks and monitor.step >= marks[0]:
            marks = [m for m in marks if m > monitor.step]
            rows.append(checkpoint(monitor, dash, source, args.repeats, args.budget))
            print_checkpoint(rows[-1], len(monitor.history))
        if not marks and monitor.step >= args.steps:
            break
    per_flush = {"watch": timed_callbacks[0].seconds, "dashboard": timed_callbacks[1].seconds,
                 "feed": feeding}
    monitor.callbacks[:] = [c.callback for c in timed_callbacks]
    return monitor, rows, per_flush


def print_checkpoint(row: dict, keys: int) -> None:
    binary, text = row["sent"]
    print(f"  step {row['step']:>9,}: {keys} keys, {row['traces']} traces (max {row['max_points']} "
          f"points), history {row['history_bytes'] / 2**20:.1f} MiB | build_figure "
          f"{1e3 * row['build']:.0f} ms, with {row['alerts']} alerts ({row['shapes']} shapes) "
          f"{1e3 * row['build_alerts']:.0f} ms | refresh() {1e3 * row['refresh_quiet']:.0f} ms "
          f"without alerts, {1e3 * row['refresh']:.0f} ms with them, sent "
          f"{binary / 1e3:.0f} kB binary + {text / 1e3:.0f} kB JSON "
          f"(arrays in the figure {row['array_bytes'] / 1e3:.0f} kB)", flush=True)


def alerts_sweep(monitor: gandiag.Monitor, counts: list[int]) -> list[tuple[int, float, int]]:
    """build_figure on the long run's history with n synthetic alerts: (n, seconds, shapes)."""
    out = []
    for n in counts:
        alerts = [gandiag.detect.Alert("nonfinite", step=int(1 + i * monitor.step // max(n, 1)),
                                       severity="critical", message="G/loss is NaN",
                                       explanation="a NaN " * 20) for i in range(n)]
        seconds, fig = timed(lambda: build_figure(monitor.history, alerts))
        out.append((n, seconds, len(fig.layout.shapes)))
        print(f"  {n:>4} alerts: build_figure {seconds:.2f} s, {len(fig.layout.shapes)} shapes", flush=True)
    return out


# ---- 2. the training thread -------------------------------------------------------------
def toy_trainer(steps: int) -> gandiag.Trainer:
    torch.manual_seed(0)
    G, D = gandiag.models.small_toy()
    return gandiag.Trainer(G, D, gandiag.data.ring(), gandiag.TrainConfig(steps=steps))


def train_plain(steps: int, beside: Dashboard | None = None) -> tuple[float, list[float]]:
    """Seconds for `steps` of the toy GAN; with `beside`, that dashboard's refresher runs
    during training (woken by this trainer's flushes): its refresh times come back too."""
    trainer = toy_trainer(steps)
    refreshes: list[float] = []
    if beside is not None:
        refresh = beside.refresh
        beside.refresh = lambda: refreshes.append(timed(refresh)[0])  # type: ignore[method-assign]
        trainer.callbacks.append(beside._controls)  # its on_records wakes beside's refresher
    seconds = timed(trainer.fit)[0]
    if beside is not None:
        trainer.callbacks.remove(beside._controls)
        del beside.refresh
    return seconds, refreshes


def train_dashboard(steps: int) -> tuple[float, list[float]]:
    """Seconds for `steps` under Dashboard(trainer, refresh_seconds=0.5): train(), wait()."""
    trainer = toy_trainer(steps)
    dash = Dashboard(trainer, refresh_seconds=0.5)
    refreshes: list[float] = []
    refresh = dash.refresh
    dash.refresh = lambda: refreshes.append(timed(refresh)[0])  # type: ignore[method-assign]
    began = time.perf_counter()
    dash.train(steps)
    dash.wait()
    seconds = time.perf_counter() - began
    dash.close()
    return seconds, refreshes


def training_cost(monitor: gandiag.Monitor, steps: int, rounds: int) -> dict[str, list]:
    """Alternating rounds of: plain, under a Dashboard, plain beside part 1's dashboard
    without its alerts; and (first round only: it is slow) with them."""
    beside = Dashboard(monitor, refresh_seconds=0.5)
    announced = monitor.alerts
    results: dict[str, list] = {"plain": [], "dashboard": [], "beside_quiet": [], "beside": []}
    for i in range(rounds):
        results["plain"].append(train_plain(steps))
        results["dashboard"].append(train_dashboard(steps))
        monitor.alerts = []  # the dashboard reads its alerts from here
        results["beside_quiet"].append(train_plain(steps, beside))
        monitor.alerts = announced
        if i == 0:
            results["beside"].append(train_plain(steps, beside))
    beside.close()
    return results


# ---- 3. replaying a stored run -----------------------------------------------------------
def write_run(path: str, args: argparse.Namespace, alerts: list) -> tuple[float, int]:
    """Write the synthetic run, one commit per flush; (seconds, scalar chunk rows)."""
    began = time.perf_counter()
    with RunWriter(path, name="replay", config={"steps": args.replay_steps}) as writer:
        for records in flushes(args.replay_steps, args.layers, args.nan_every):
            writer.write(records)
            writer.flush()  # a live run's layout: the writer keeps up, one chunk per flush
        for alert in alerts:
            if alert.step <= args.replay_steps:
                writer.add_alert(**alert.row())
    seconds = time.perf_counter() - began
    with sqlite3.connect(path) as conn:
        (rows,) = conn.execute("SELECT count(*) FROM scalar_chunks").fetchone()
    return seconds, rows


def replay(path: str) -> dict[str, Any]:
    """open_run + build_figure(run, run.alerts()), in parts and at once."""
    out: dict[str, Any] = {}
    out["open"], run = timed(lambda: gandiag.open_run("replay", path))
    out["read"], (series, _) = timed(lambda: series_of(run))
    out["alerts_read"], alerts = timed(run.alerts)
    out["build"], fig = timed(lambda: build_figure(series, []))
    out["build_alerts"], fig = timed(lambda: build_figure(series, alerts))
    out["n_alerts"], out["points"] = len(alerts), sum(len(s) for s, _ in series.values())
    out["whole"] = timed(lambda: build_figure(run, run.alerts()))[0]
    run.close()
    if hasattr(Dashboard, "from_run"):  # a FigureWidget, the samples slider, a status line
        out["from_run"] = timed(lambda: Dashboard.from_run("replay", store=path))[0]
    return out | figure_stats(fig)


# ---- main ------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1_000_000, help="length of the live run")
    parser.add_argument("--layers", type=int, default=10, help="layers per model (grad_norm keys)")
    parser.add_argument("--nan-every", type=int, default=50_000, help="one NaN G loss per N steps (0: none)")
    parser.add_argument("--repeats", type=int, default=5, help="timings per checkpoint (median)")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per checkpoint before fewer repeats")
    parser.add_argument("--sweep", default="0,10,20,40", help="alert counts for build_figure at the end")
    parser.add_argument("--train-steps", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds of the training check")
    parser.add_argument("--replay-steps", type=int, default=1_000_000)
    parser.add_argument("--parts", default="1,2,3", help="which parts to time (the run is fed for 2 too)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")  # health warnings about the hook-less monitor
    print(f"gandiag dashboard refresh, torch {torch.__version__}, {os.cpu_count()} CPUs, one torch thread")

    parts = {int(p) for p in args.parts.split(",") if p}
    print(f"1. refresh cost, {args.layers} layers per model, flushes of 50 steps:")
    monitor, rows, per_flush = refresh_vs_length(args, timings=1 in parts)
    report_consumers(per_flush)
    if 1 in parts:
        print("   build_figure on the final history with n alerts:")
        alerts_sweep(monitor, [int(n) for n in args.sweep.split(",") if n])
    if 2 in parts:
        print(f"2. training thread: toy GAN, {args.train_steps} steps, {args.rounds} rounds:")
        report_training(training_cost(monitor, args.train_steps, args.rounds))
    if 3 in parts:
        replay_report(args, list(monitor.diagnosis.alerts))
    return 0


def replay_report(args: argparse.Namespace, alerts: list) -> None:
    print(f"3. replay of a stored {args.replay_steps:,}-step run:")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # MiB (Linux: KiB)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "gandiag.sqlite")
        seconds, chunks = write_run(path, args, alerts)
        print(f"  written in {seconds:.0f} s ({chunks:,} chunk rows, "
              f"{os.path.getsize(path) / 2**20:.0f} MiB)", flush=True)
        r = replay(path)
    print(f"  open_run {1e3 * r['open']:.0f} ms; reading {r['points']:,} points {r['read']:.2f} s; "
          f"alerts {1e3 * r['alerts_read']:.0f} ms; build_figure {r['build']:.2f} s without alerts, "
          f"{r['build_alerts']:.2f} s with {r['n_alerts']}; open + build_figure(run, run.alerts()) "
          f"{r['whole']:.2f} s; {r['traces']} traces, max {r['max_points']} points")
    if "from_run" in r:
        print(f"  Dashboard.from_run (open, build, FigureWidget) {r['from_run']:.2f} s")
    print(f"  peak memory of the process (max RSS): {peak:.0f} MiB before the replay, "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB after")


def report_consumers(per_flush: dict) -> None:
    for name in ("watch", "dashboard"):
        times = np.array(per_flush[name]) * 1e6
        print(f"   consumer {name}: median {np.median(times):.1f} us per flush, "
              f"p99 {np.percentile(times, 99):.1f}, max {times.max():.0f} ({len(times)} flushes)")
    print(f"   feeding (history.append + consumers): {per_flush['feed']:.0f} s in all")


def report_training(results: dict[str, list]) -> None:
    """Seconds per run; ratios to plain: median of same-round pairs, and of the minima
    (other work on a shared machine only ever adds time)."""
    plain = [s for s, _ in results["plain"]]
    for name, label in (("plain", "plain Trainer.fit"), ("dashboard", "Dashboard(trainer).train()"),
                        ("beside_quiet", "plain, beside part 1's dashboard without its alerts"),
                        ("beside", "plain, beside part 1's dashboard with its alerts")):
        seconds = [s for s, _ in results[name]]
        refreshes = [r for _, rs in results[name] for r in rs]
        extra = (f", {len(refreshes) / len(seconds):.0f} refreshes a run, median "
                 f"{1e3 * statistics.median(refreshes):.0f} ms" if refreshes else "")
        pairs = statistics.median(s / p for s, p in zip(seconds, plain))
        print(f"   {label}: {', '.join(f'{s:.1f}' for s in seconds)} s, ratio {pairs:.2f} "
              f"(same-round pairs, median), {min(seconds) / min(plain):.2f} (minima){extra}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
