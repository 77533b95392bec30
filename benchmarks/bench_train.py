"""Time the training step of the tutorial's LSTM, several ways, on real MNIST batches.

    python benchmarks/bench_train.py                      # everything, ~5 minutes on 2 cores
    python benchmarks/bench_train.py --steps=20 --repeats=2 --no-e2e --variants=default,fast
    python benchmarks/bench_train.py --profile=fast       # where a step's time goes
    python benchmarks/bench_train.py --lengths=28,112,784 # examples/s of the cells and PyTorch by sequence length

Each variant runs in a worker process of its own (TF1 graph mode, PyTorch and
Keras 3 do not share a process well) and is warmed up first. The workers are
then timed in turn, A B C A B C ..., so drift of a noisy machine touches every
variant alike; the table gives each one's median over the repeats. It also
times loading the data, the whole default command (wall time and peak memory),
and GEMM rates on this machine, from which the "floor" of a training step
follows: its float32 matmul work at numpy's rate, and (where a bfloat16 variant
runs) the same work at TensorFlow's bfloat16 rate.
"""
import argparse
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # the project's modules: config.py, data.py, the script
config = importlib.import_module("config")

BATCH, STEPS, INPUT, HIDDEN, CLASSES = config.batch_size, config.n_steps, config.n_input, config.n_hidden, 10
DISPLAY_STEP = config.display_step

VARIANTS = {
    "tutorial": "the tutorial's loop as written: BasicLSTMCell + dynamic_rnn, accuracy and loss in two extra runs",
    "default": "this script's default: the same graph, both metrics in one run",
    "fast": "cell=fast: the same LSTM unrolled, fused gates, hand-written backward, two chains",
    "pytorch": "PyTorch nn.LSTM(28, 128) + Linear + Adam",
    "fast-bf16": "cell=fast, precision=bf16: the fast cell's matmuls in bfloat16",
    "pytorch-bf16": "the PyTorch model under torch.autocast(\"cpu\", dtype=torch.bfloat16)",
    "keras3": "Keras 3 LSTM(128) + Dense + Adam, model.fit (TensorFlow backend)",
}


def precision_of(variant):
    """config.py's precision for a variant: its name ends in -bf16, or it is float32."""
    return "bf16" if variant.endswith("-bf16") else "fp32"


# ------------------------------------------------------------------ workers

def batches(n):
    """n real MNIST training batches (images as sequences, one-hot labels)."""
    import data

    mnist = data.read_data_sets(os.path.join(ROOT, "data", "mnist"), one_hot=True, seed=1)
    return [tuple(a for a in mnist.train.next_batch(BATCH)) for _ in range(n)]


def pixels_per_step(n_steps):
    """An image read in n_steps steps reads 784 / n_steps pixels a step (28 rows, 112 of 7, 784 pixels)."""
    return 28 * 28 // n_steps


def tf1_session(variant, threads=(None, None), n_steps=STEPS):
    """(session, model, settings) of a TF1 variant's graph, initialized.

    The tutorial's tf.Session() took TensorFlow's thread defaults; the others
    take config.py's, or the --*_threads given.
    """
    import train_lstm_mnist as script

    overrides = {"cell": "fast" if variant.startswith("fast") else "basic", "precision": precision_of(variant),
                 "n_steps": n_steps, "n_input": pixels_per_step(n_steps)}
    if variant == "tutorial":
        overrides.update(intra_op_threads=0, inter_op_threads=0)
    else:
        overrides.update({name: value for name, value in zip(("intra_op_threads", "inter_op_threads"), threads,
                                                             strict=True) if value is not None})
    cfg = script.SETTINGS.make(overrides)
    model = script.build_graph(cfg)
    return script.session(cfg, model), model, cfg


def tf1_stepper(variant, threads, n_steps):
    """A function that runs one training step of the TF1 graph, as the variant's loop does."""
    sess, model, cfg = tf1_session(variant, threads, n_steps)
    step = [0]

    def run(batch_x, batch_y):
        step[0] += 1
        feed = {model.x: batch_x.reshape(-1, n_steps, pixels_per_step(n_steps)), model.y: batch_y}
        sess.run(model.optimizer, feed_dict=feed)
        if step[0] % DISPLAY_STEP == 0:
            if variant == "tutorial":
                sess.run(model.accuracy, feed_dict=feed)
                sess.run(model.cost, feed_dict=feed)
            else:
                sess.run([model.accuracy, model.cost], feed_dict=feed)
    return run


def pytorch_stepper(precision, n_steps):
    """One training step of the same model in PyTorch, with the tutorial's loss and accuracy
    every DISPLAY_STEP steps; "bf16": forward and loss under autocast, as PyTorch advises."""
    import contextlib

    import torch

    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(1)

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(pixels_per_step(n_steps), HIDDEN, batch_first=True)
            self.out = torch.nn.Linear(HIDDEN, CLASSES)

        def forward(self, x):
            return self.out(self.lstm(x)[0][:, -1])

    model = Model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    step = [0]

    def precision_scope():
        return torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()

    def run(batch_x, batch_y):
        step[0] += 1
        x = torch.from_numpy(batch_x.reshape(-1, n_steps, pixels_per_step(n_steps)))
        y = torch.from_numpy(batch_y.argmax(axis=1))
        optimizer.zero_grad()
        with precision_scope():
            logits = model(x)
            loss = torch.nn.functional.cross_entropy(logits, y)
        loss.backward()
        optimizer.step()
        if step[0] % DISPLAY_STEP == 0:
            loss.item(), (logits.argmax(1) == y).float().mean().item()
    return run


def keras3_timer(data_batches):
    """Keras 3 trains through fit(): time whole fit() calls over n batches."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((STEPS, INPUT)), keras.layers.LSTM(HIDDEN), keras.layers.Dense(CLASSES)])
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    x = np.concatenate([b[0] for b in data_batches]).reshape(-1, STEPS, INPUT)
    y = np.concatenate([b[1] for b in data_batches])

    def timed(n):
        n = min(n, len(data_batches))
        started = time.perf_counter()
        model.fit(x[:n * BATCH], y[:n * BATCH], batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
        return (time.perf_counter() - started) / n
    return timed


def worker(variant, steps, threads, n_steps):
    """Warm up, say 'ready' and the seconds the graph (or model) and its first step took, then answer
    each 'N' on stdin with seconds per step over N steps. Longer sequences warm up on fewer steps."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # the TF1 variants' tf_setup does the rest
    data_batches = batches(max(steps, 20))
    importlib.import_module("keras" if variant == "keras3" else "torch" if variant.startswith("pytorch") else
                            "train_lstm_mnist")  # the first step's time is the graph's and the step's, not imports'
    started = time.perf_counter()
    if variant == "keras3":
        timed = keras3_timer(data_batches)
        timed(len(data_batches))
        first_step_s = time.perf_counter() - started  # the model and its first fit()
    else:
        run = pytorch_stepper(precision_of(variant), n_steps) if variant.startswith("pytorch") else \
            tf1_stepper(variant, threads, n_steps)
        run(*data_batches[0])
        first_step_s = time.perf_counter() - started

        def timed(n):
            started = time.perf_counter()
            for k in range(n):
                run(*data_batches[k % len(data_batches)])
            return (time.perf_counter() - started) / n
        timed(max(3, 20 * STEPS // n_steps))
    print("ready", first_step_s, flush=True)
    for line in sys.stdin:
        print(timed(int(line)), flush=True)


def why_skipped(variant):
    """Why this machine cannot run `variant`, or None."""
    import importlib.util

    from lstm_mnist import hardware

    module = "torch" if variant.startswith("pytorch") else "keras" if variant == "keras3" else None
    if module and importlib.util.find_spec(module) is None:
        return "not installed (pip install -r benchmarks/requirements.txt)"
    if precision_of(variant) == "bf16" and hardware.cpu_lacks_bf16():
        return "this CPU has neither AVX512-BF16 nor AMX (/proc/cpuinfo)"
    return None


class Worker:
    def __init__(self, variant, args, n_steps=STEPS):
        self.variant = variant
        self.log = tempfile.TemporaryFile("w+")  # the worker's stderr: TF's chatter, or why it failed
        threads = [f"--{name}={value}" for name, value in
                   (("intra_op_threads", args.intra_op_threads), ("inter_op_threads", args.inter_op_threads))
                   if value is not None]
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--worker", variant, f"--steps={args.steps}", f"--n_steps={n_steps}",
             *threads],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, cwd=ROOT)
        self.seconds = []

    def wait_ready(self):
        said = self.process.stdout.readline().split()
        if said[:1] != ["ready"]:
            self.log.seek(0)
            raise RuntimeError(f"worker {self.variant} failed to start:\n{self.log.read()[-2000:]}")
        self.first_step_s = float(said[1])

    def time(self, steps):
        self.process.stdin.write(f"{steps}\n")
        self.process.stdin.flush()
        self.seconds.append(float(self.process.stdout.readline()))

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=60)
        self.log.close()


# ------------------------------------------------------------ other numbers

def step_flops():
    """Float32 matmul work of one training step: forward [B, I+H] x [I+H, 4H] per time step,
    and twice that backward (gradients for the inputs and for the weights)."""
    forward = STEPS * 2 * BATCH * (INPUT + HIDDEN) * 4 * HIDDEN
    return forward, 2 * forward


def gemm_rate(shape, repeats=30):
    """GFLOP/s of numpy's float32 matmul at (m, k) x (k, n) on this machine, best of a few tries."""
    import numpy as np

    m, k, n = shape
    a, b = np.random.rand(m, k).astype(np.float32), np.random.rand(k, n).astype(np.float32)
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = min(best, (time.perf_counter() - started) / repeats)
    return 2 * m * k * n / best / 1e9


def bf16_gemm_rate(shape, repeats=30, products=8):
    """GFLOP/s of TensorFlow's bfloat16 matmul (oneDNN's, as the fast cell's bf16 mode runs it; numpy
    has no bfloat16) at (m, k) x (k, n), `products` independent ones per session run so that the
    run's own overhead is shared out, best of a few tries."""
    from lstm_mnist.tf_setup import tf, tf1

    m, k, n = shape
    graph = tf.Graph()
    with graph.as_default():
        a = tf1.Variable(tf.cast(tf.random.uniform((products * m, k)), tf.bfloat16))
        b = tf1.Variable(tf.cast(tf.random.uniform((k, n)), tf.bfloat16))
        work = tf.group(*[tf.matmul(part, b) for part in tf.split(a, products)])  # different inputs: no CSE
        init = tf1.global_variables_initializer()
    with tf1.Session(graph=graph) as sess:
        sess.run(init)
        sess.run(work)
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(repeats):
                sess.run(work)
            best = min(best, (time.perf_counter() - started) / repeats / products)
    return 2 * m * k * n / best / 1e9


FLOOR_SHAPES = {"recurrent": (BATCH, INPUT + HIDDEN, 4 * HIDDEN),  # [100 x 156] x [156 x 512], every time step
                "weight_gradient": (INPUT + HIDDEN, STEPS * BATCH, 4 * HIDDEN)}  # [156 x 2800] x [2800 x 512]


def floor_ms(rate=gemm_rate, recurrent_repeats=300):
    """The step's matmul work at the measured GEMM rates (`rate`: float32 by numpy, or bfloat16): the
    recurrent products at the rate of a [100 x 156] x [156 x 512] product, the weight gradients at the
    rate of one [156 x 2800] x [2800 x 512] product."""
    recurrent_rate = rate(FLOOR_SHAPES["recurrent"], repeats=recurrent_repeats)
    weight_rate = rate(FLOOR_SHAPES["weight_gradient"])
    forward, backward = step_flops()
    recurrent, weights = forward + backward / 2, backward / 2
    ms = (recurrent / recurrent_rate + weights / weight_rate) / 1e6
    return ms, {"recurrent_gflops": recurrent_rate, "weight_gradient_gflops": weight_rate,
                "step_gflop": (forward + backward) / 1e9}


def data_loading_seconds():
    import data

    started = time.perf_counter()
    data.read_data_sets(os.path.join(ROOT, "data", "mnist"), one_hot=True)
    return time.perf_counter() - started


def end_to_end(variant):
    """Wall seconds, peak memory (MiB) and the lines of results and phases of the whole default
    command, with the cell and precision of `variant` (basic, fast or fast-bf16)."""
    cell = variant.partition("-")[0]
    with tempfile.TemporaryDirectory() as out_dir, tempfile.TemporaryFile("w+") as out, \
            tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, os.path.join(ROOT, "train_lstm_mnist.py"), f"--cell={cell}",
                                    f"--precision={precision_of(variant)}", f"--out_dir={out_dir}"],
                                   stdout=out, stderr=err, text=True)
        # wait4 gives this child's own peak resident memory (KiB on Linux), not the workers'.
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        lines, errors = out.read().splitlines(), err.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"train_lstm_mnist.py, {variant}, failed: {errors.strip()[-500:]}")

    def line(start):
        return next(line for line in lines if line.startswith(start))
    return {"wall_s": wall, "peak_mib": usage.ru_maxrss / 1024, "testing_accuracy": line("Testing Accuracy:"),
            "full_test": line("Full test set:"), "steady_state": line("Steady state:"), "phases": line("Time:")}


def profile(variant, n_steps=STEPS, runs=5):
    """Where a TF1 variant's training step spends its time: kernel time per op type,
    from traced steps (tracing inflates every kernel; read the shares, not the totals)."""
    import collections

    from lstm_mnist.tf_setup import tf1

    sess, model, _ = tf1_session(variant, n_steps=n_steps)
    batch_x, batch_y = batches(1)[0]
    feed = {model.x: batch_x.reshape(-1, n_steps, pixels_per_step(n_steps)), model.y: batch_y}
    micros, calls = collections.Counter(), collections.Counter()
    with sess:
        for _ in range(20 if n_steps == STEPS else 3):
            sess.run(model.optimizer, feed)
        started = time.perf_counter()
        for _ in range(runs):
            sess.run(model.optimizer, feed)
        untraced_ms = (time.perf_counter() - started) / runs * 1000
        for _ in range(runs):
            metadata = tf1.RunMetadata()
            sess.run(model.optimizer, feed, run_metadata=metadata,
                     options=tf1.RunOptions(trace_level=tf1.RunOptions.FULL_TRACE))
            for node in (n for device in metadata.step_stats.dev_stats for n in device.node_stats):
                op = node.timeline_label.split(" = ")[-1].split("(")[0] or node.node_name
                micros[op] += (node.op_end_rel_micros - node.op_start_rel_micros) / runs
                calls[op] += 1 / runs
    total = sum(micros.values())
    # Kernels run one after another here (the recurrence), so the gap between the kernels' own time and the
    # step's is what running them costs: the executor's work per kernel, not arithmetic.
    print(f"{variant}, {n_steps} steps, batch {BATCH}: {sum(calls.values()):.0f} kernels per step; a step takes "
          f"{untraced_ms:.0f} ms untraced, {untraced_ms * 1000 / sum(calls.values()):.1f} us per kernel")
    for op, us in micros.most_common(12):
        print(f"{op:<32} {100 * us / total:5.1f}%  {calls[op]:5.0f} calls")


# --------------------------------------------------------------------- main

def timed_workers(variants, args, n_steps=STEPS, steps=None):
    """The workers of `variants` (those this machine can run) after their interleaved timings of
    `steps` steps each (args.steps by default), and {variant: why} for those skipped."""
    skipped = {v: why for v in variants if (why := why_skipped(v))}
    workers = []
    try:
        for variant in (v for v in variants if v not in skipped):
            # one starts after another is ready, so that each one's graph + first step has the cores to itself
            workers.append(Worker(variant, args, n_steps))
            workers[-1].wait_ready()
        for _ in range(args.repeats):
            for w in workers:
                w.time(steps or args.steps)
    finally:
        for w in workers:
            w.close()
    return workers, skipped


def measure(args):
    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        sys.exit(f"unknown variant {unknown[0]}; known: {', '.join(VARIANTS)}")
    workers, skipped = timed_workers(variants, args)
    ms = {w.variant: 1000 * statistics.median(w.seconds) for w in workers}
    floor, gemm = floor_ms()
    bf16_floor = bf16_gemm = None
    if any(precision_of(v) == "bf16" and v not in skipped for v in variants):
        bf16_floor, bf16_gemm = floor_ms(bf16_gemm_rate, recurrent_repeats=30)
    results = {
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "python": platform.python_version()},
        "settings": {"steps": args.steps, "repeats": args.repeats, "intra_op_threads": args.intra_op_threads,
                     "inter_op_threads": args.inter_op_threads},
        "step_ms": {v: {"median": ms[v], "all": [1000 * s for s in w.seconds]} for v, w in
                    ((w.variant, w) for w in workers)},
        "skipped": skipped, "floor_ms": floor, "gemm": gemm, "floor_bf16_ms": bf16_floor, "gemm_bf16": bf16_gemm,
        "data_loading_s": data_loading_seconds(),
    }
    if args.e2e:
        results["end_to_end"] = {v: end_to_end(v) for v in ("basic", "fast", "fast-bf16") if not why_skipped(v)}
    return results


LENGTH_VARIANTS = ("default", "fast", "pytorch")  # the tutorial's cell, the fast cell, the peer


def measure_lengths(args):
    """Examples/s of LENGTH_VARIANTS at each of args.lengths steps (784 / n pixels a step), and the
    seconds each took to build and run its first step. Longer sequences time fewer steps each."""
    results = {"machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                           "python": platform.python_version()}, "lengths": {}, "skipped": {}}
    for n_steps in (int(n) for n in args.lengths.split(",")):
        steps = max(3, args.steps * STEPS // n_steps)
        workers, results["skipped"] = timed_workers(LENGTH_VARIANTS, args, n_steps, steps)
        results["lengths"][n_steps] = {w.variant: {"examples_per_s": BATCH / statistics.median(w.seconds),
                                                   "all_s": w.seconds, "first_step_s": w.first_step_s,
                                                   "steps": steps} for w in workers}
    return results


def report_lengths(results):
    lines = [f"{'steps':>5} {'x':>2} {'variant':<8} {'examples/s':>10} {'first step':>10}  (graph + first step)"]
    for n_steps, by_variant in results["lengths"].items():
        for variant, r in by_variant.items():
            lines.append(f"{n_steps:>5} {pixels_per_step(int(n_steps)):>2} {variant:<8} {r['examples_per_s']:10.0f} "
                         f"{r['first_step_s']:9.1f}s")
        rate = {v: r["examples_per_s"] for v, r in by_variant.items()}
        ratios = [f"{a} / {b} {rate[a] / rate[b]:.2f}x" for a, b in
                  (("fast", "default"), ("fast", "pytorch"), ("pytorch", "default")) if a in rate and b in rate]
        lines.append(f"{n_steps:>5} steps: " + ", ".join(ratios))
    lines += [f"{variant} skipped: {why}" for variant, why in results["skipped"].items()]
    return "\n".join(lines)


def report(results):
    ms = {v: r["median"] for v, r in results["step_ms"].items()}
    base = ms.get("default")
    lines = [f"{'variant':<10} {'ms/step':>8} {'steps/s':>8} {'vs default':>10} {'vs floor':>9}  what"]
    for variant, value in ms.items():
        ratio = f"{base / value:.2f}x" if base else "-"
        lines.append(f"{variant:<10} {value:8.2f} {1000 / value:8.1f} {ratio:>10} "
                     f"{value / results['floor_ms']:8.2f}x  {VARIANTS[variant]}")
    for name, floor, gemm, how in (("floor", results["floor_ms"], results["gemm"], "float32, numpy"),
                                   ("floor-bf16", results["floor_bf16_ms"], results["gemm_bf16"], "bfloat16, TF")):
        if floor:
            lines.append(f"{name:<10} {floor:8.2f} {1000 / floor:8.1f} {'':>10} {floor / results['floor_ms']:8.2f}x  "
                         f"{gemm['step_gflop']:.2f} GFLOP/step at {gemm['recurrent_gflops']:.0f} GFLOP/s (recurrent) "
                         f"and {gemm['weight_gradient_gflops']:.0f} GFLOP/s (weight grads), {how}")
    for variant, why in results["skipped"].items():
        lines.append(f"{variant:<10} skipped: {why}")
    for suffix in ("", "-bf16"):
        if "fast" + suffix in ms and "pytorch" + suffix in ms:
            lines.append(f"fast{suffix} / pytorch{suffix} steps/s: {ms['pytorch' + suffix] / ms['fast' + suffix]:.2f}")
    if results["floor_bf16_ms"]:
        lines.append("against its own floor: " + ", ".join(
            f"{v} {ms[v] / (results['floor_bf16_ms'] if precision_of(v) == 'bf16' else results['floor_ms']):.2f}x"
            for v in ms))
    lines.append(f"data loading: {results['data_loading_s']:.2f} s")
    for variant, run in results.get("end_to_end", {}).items():
        lines.append(f"end to end, {variant}: {run['wall_s']:.1f} s wall, peak memory {run['peak_mib']:.0f} MiB; "
                     f"{run['testing_accuracy']}; {run['full_test']}\n  {run['steady_state']}\n  {run['phases']}")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, of: " + ", ".join(VARIANTS))
    parser.add_argument("--steps", type=int, default=100, help="training steps per timing")
    parser.add_argument("--repeats", type=int, default=5, help="timings per variant (interleaved)")
    parser.add_argument("--intra_op_threads", type=int, help="for default and fast (default: config.py's)")
    parser.add_argument("--inter_op_threads", type=int, help="for default and fast (default: config.py's)")
    parser.add_argument("--no-e2e", dest="e2e", action="store_false", help="skip the whole-command runs")
    parser.add_argument("--json", help="where to write (default: benchmarks/results.json, with --lengths "
                        "benchmarks/results-lengths.json)")
    parser.add_argument("--profile", metavar="VARIANT", help="instead: kernel time by op type (tutorial or fast)")
    parser.add_argument("--lengths", metavar="N,N,...", help="instead: examples/s of " + ", ".join(LENGTH_VARIANTS) +
                        " at these sequence lengths (784 / N pixels a step); --steps is for 28, longer ones time fewer")
    parser.add_argument("--n_steps", type=int, default=STEPS, help="with --profile: the sequence's steps (784: pixels)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.profile:
        return profile(args.profile, args.n_steps)
    if args.worker:
        return worker(args.worker, args.steps, (args.intra_op_threads, args.inter_op_threads), args.n_steps)
    results = measure_lengths(args) if args.lengths else measure(args)
    print(report_lengths(results) if args.lengths else report(results))
    default_json = "results-lengths.json" if args.lengths else "results.json"
    args.json = args.json or os.path.join(ROOT, "benchmarks", default_json)
    with open(args.json, "w") as f:
        json.dump(results, f, indent=2)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
