"""The tutorial's LSTM, built for speed in graph mode (`cell = "fast"` in config.py).

Same math as BasicLSTMCell: gates = [x_t, h] @ kernel + bias, split in the
order i, j, f, o; c = c * sigmoid(f + forget_bias) + sigmoid(i) * tanh(j);
h = tanh(c) * sigmoid(o). Same variables too (rnn/basic_lstm_cell/kernel and
bias), so a checkpoint of either mode loads in the other.

The tutorial's graph spends its time on per-op overhead and on elementwise
kernels, not on arithmetic: dynamic_rnn's while loop runs thousands of tiny
kernels a step, and TensorFlow's generic elementwise kernels are slow next to
oneDNN's. Here:
- the recurrence is unrolled (n_steps is fixed), one matmul per time step;
- the four gates go through one sigmoid, fused into that matmul by grappler
  (MatMul + BiasAdd + Sigmoid -> one oneDNN kernel): tanh(j) = 2 * sigmoid(2j) - 1,
  so the j columns of the kernel and bias are doubled, and forget_bias is
  folded into the bias, once per training step;
- the backward pass is written by hand (tf.custom_gradient): per time step one
  SigmoidGrad for all gates and one matmul with a pre-transposed weight (a
  transpose flag makes oneDNN's matmul much slower at these shapes); the
  weight gradients are a few large matmuls over blocks of time steps;
- the batch is split in two halves that run as independent recurrences, so
  that both cores of a small machine work at once (one small matmul does not
  get faster with a second thread, two of them side by side do);
- optionally (precision = "bf16"), every matmul computes in bfloat16, for
  CPUs with AVX512-BF16 or AMX.
Measured on a 2-core machine: benchmarks/README.md.
"""
import types

from lstm_mnist.tf_setup import tf, tf1

PARALLEL_CHAINS = 2  # the batch runs as this many independent recurrences, one per core
WEIGHT_GRADIENT_BLOCKS = 2  # blocks of time steps whose weight gradient is one matmul


def lstm_variables(n_input, n_hidden):
    """kernel [n_input + n_hidden, 4 * n_hidden] and bias [4 * n_hidden], named as
    BasicLSTMCell's inside dynamic_rnn and initialized as it does (Glorot uniform, zeros)."""
    with tf1.variable_scope("rnn/basic_lstm_cell"):
        kernel = tf1.get_variable("kernel", [n_input + n_hidden, 4 * n_hidden],
                                  initializer=tf1.glorot_uniform_initializer())
        bias = tf1.get_variable("bias", [4 * n_hidden], initializer=tf1.zeros_initializer())
    return kernel, bias


def gate_scaling(n_hidden, forget_bias):
    """(scale, shift) of the kernel's and bias's columns: scale doubles the j columns (one
    sigmoid gives tanh(j) too), shift adds forget_bias to the f columns."""
    ones, zeros = tf.ones([n_hidden]), tf.zeros([n_hidden])
    scale = tf.concat([ones, 2 * ones, ones, ones], axis=0)
    shift = tf.concat([zeros, zeros, tf.fill([n_hidden], float(forget_bias)), zeros], axis=0)
    return scale, shift


DTYPES = {"fp32": tf.float32, "bf16": tf.bfloat16}  # config.py's precision: what the matmuls compute in


def matmul(a, b, dtype):
    """a @ b with operands and product in `dtype` (bfloat16: oneDNN sums in float32 inside),
    as float32. bfloat16 is for the matmuls alone: weights, gradients, Adam's state and the
    elementwise gate math stay float32 (TensorFlow's CPU kernels do that no faster in bfloat16,
    and computing the forward's bias and sigmoid in bfloat16 too was measured no faster).
    With float32 the casts are no ops, and grappler still fuses MatMul + BiasAdd + Sigmoid."""
    return tf.cast(tf.matmul(tf.cast(a, dtype), tf.cast(b, dtype)), tf.float32)


def recurrence(x, w, b, n_input, dtype=tf.float32):
    """The forward pass, unrolled, with the scaled weights: per time step, lists of [x_t, h]
    (xh), the gates' sigmoid (s), tanh(j) (tj), c before the step (c), tanh(c) (tc) and h."""
    steps = types.SimpleNamespace(xh=[], s=[], tj=[], c=[], tc=[], h=[])
    w = tf.cast(w, dtype)  # once, not at every step
    h = c = None
    for x_t in tf.unstack(x, axis=1):
        xh = x_t if h is None else tf.concat([x_t, h], axis=1)
        s = tf.sigmoid(tf.nn.bias_add(matmul(xh, w[:n_input] if h is None else w, dtype), b))
        i, sj, f, o = tf.split(s, 4, axis=1)
        tj = 2.0 * sj - 1.0
        steps.c.append(c)
        c = i * tj if c is None else f * c + i * tj
        tc = tf.tanh(c)
        h = o * tc
        steps.xh.append(xh)
        steps.s.append(s)
        steps.tj.append(tj)
        steps.tc.append(tc)
        steps.h.append(h)
    return steps


def outputs(x, kernel, bias, forget_bias, precision="fp32"):
    """(h at every time step, (batch, n_steps, n_hidden); h at the last one, (batch, n_hidden)) for x
    of (batch, n_steps, n_input), as dynamic_rnn's outputs and their last step: both from one forward
    pass, so that a run fetching both (scoring with the answer after every row) computes it once. The
    gradient is the last step's alone (the hand-written one below); nothing trains through the first."""
    n_steps, n_input = x.shape[1], x.shape[2]
    scale, shift = gate_scaling(kernel.shape[1] // 4, forget_bias)
    dtype = DTYPES[precision]
    every_h = []  # each chain's h at every step, kept from inside its forward pass

    @tf.custom_gradient
    def lstm(x, kernel, bias):
        w = kernel * scale
        b = (bias + shift) * scale
        # Transposed once here rather than by a flag on each backward matmul. The
        # scaling comes after the transpose, so the matmuls read a Mul, and grappler
        # cannot fold the transpose back into their flag.
        w_h_t = tf.transpose(kernel[n_input:]) * scale[:, None]
        steps = recurrence(x, w, b, n_input, dtype)
        every_h.append(tf.stack(steps.h, axis=1))
        xh_steps, s_steps, tj_steps, c_steps, tc_steps = steps.xh, steps.s, steps.tj, steps.c, steps.tc

        def grad(dh):
            d_steps = [None] * n_steps
            dc = None
            for t in reversed(range(n_steps)):
                i, _, f, o = tf.split(s_steps[t], 4, axis=1)
                dc_t = tf.raw_ops.TanhGrad(y=tc_steps[t], dy=dh * o)
                dc = dc_t if dc is None else dc + dc_t
                d_f = dc * c_steps[t] if t > 0 else tf.zeros_like(dc)
                ds = tf.concat([dc * tj_steps[t], 2.0 * dc * i, d_f, dh * tc_steps[t]], axis=1)
                d_steps[t] = tf.raw_ops.SigmoidGrad(y=s_steps[t], dy=ds)
                if t > 0:
                    dh = matmul(d_steps[t], w_h_t, dtype)
                    dc = dc * f
            d_kernel = weight_gradient(xh_steps, d_steps, n_input, dtype) * scale
            d_bias = tf.add_n([tf.reduce_sum(d, axis=0) for d in d_steps]) * scale
            return None, d_kernel, d_bias

        return steps.h[-1], grad

    kernel, bias = tf.convert_to_tensor(kernel), tf.convert_to_tensor(bias)
    batch = tf.shape(x)[0]
    bounds = [batch * k // PARALLEL_CHAINS for k in range(PARALLEL_CHAINS + 1)]
    parts = tf.split(x, tf.stack([bounds[k + 1] - bounds[k] for k in range(PARALLEL_CHAINS)]), axis=0)
    last = tf.concat([lstm(part, kernel, bias) for part in parts], axis=0)
    return tf.concat(every_h, axis=0), last


def weight_gradient(xh_steps, d_steps, n_input, dtype):
    """sum_t xh_t^T @ d_t, as one matmul per block of time steps.

    Step 0 saw only x (h was zero), so its contribution covers the x rows alone.
    """
    first = matmul(tf.transpose(xh_steps[0]), d_steps[0], dtype)
    n_steps = len(xh_steps)
    size = -(-(n_steps - 1) // WEIGHT_GRADIENT_BLOCKS)
    blocks = []
    for start in range(1, n_steps, size):
        xh = tf.concat(xh_steps[start:start + size], axis=0)
        d = tf.concat(d_steps[start:start + size], axis=0)
        blocks.append(matmul(tf.transpose(xh), d, dtype))
    rest = tf.add_n(blocks)
    return rest + tf.pad(first, [[0, rest.shape[0] - n_input], [0, 0]])
