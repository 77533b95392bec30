"""The tutorial's LSTM, built for speed in graph mode (`cell = "fast"` in config.py).

Same math as BasicLSTMCell (model.py): gates = [x_t, h] @ kernel + bias, in
BasicLSTMCell's blocks i, j, f, o; c = c * sigmoid(f + forget_bias) + sigmoid(i) *
tanh(j); h = tanh(c) * sigmoid(o). Same variables too, named as BasicLSTMCell's
(model.cell_variables), so a checkpoint of either cell loads in the other; with
num_layers > 1 the layers are stacked as MultiRNNCell stacks them, each reading the
outputs of the one below.

The tutorial's graph spends its time on per-op overhead and on elementwise
kernels, not on arithmetic: dynamic_rnn's while loop runs thousands of tiny
kernels a step, and TensorFlow's generic elementwise kernels are slow next to
oneDNN's. Here:
- the recurrence is unrolled (n_steps is fixed), one matmul per time step; a longer
  sequence than CHUNK_STEPS (784 pixels) runs as a while loop over unrolled chunks,
  so that its graph does not grow with its length;
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

from lstm_mnist import model
from lstm_mnist.tasks import SHORT_SEQUENCE
from lstm_mnist.tf_setup import tf

PARALLEL_CHAINS = 2  # the batch runs as this many independent recurrences, one per core
WEIGHT_GRADIENT_BLOCKS = 2  # blocks of time steps whose weight gradient is one matmul
CHUNK_STEPS = SHORT_SEQUENCE  # longer sequences run as a loop over chunks of at most this many unrolled steps


def layers(sequence, n_hidden, forget_bias, num_layers, precision="fp32"):
    """The fast cell's model.Layers over `sequence` (batch, n_steps, n_input), the bottom one first, and
    h at the last step of the top one, (batch, n_hidden), which the readout trains through. A layer
    below the top trains through its outputs at every step, which the layer above reads."""
    stack, inputs = [], sequence
    for k in range(num_layers):
        kernel, bias = model.cell_variables(k, num_layers, inputs.shape[2], n_hidden)
        top = k == num_layers - 1
        every, last = outputs(inputs, kernel, bias, forget_bias, precision, every_step_trained=not top,
                              input_trained=k > 0)
        stack.append(model.Layer(kernel, bias, inputs, every, forget_bias))
        inputs = every
    return stack, last


def gate_scaling(n_hidden, forget_bias):
    """(scale, shift) of the kernel's and bias's columns: scale doubles the j columns (one
    sigmoid gives tanh(j) too), shift adds forget_bias to the f columns."""
    ones, zeros = tf.ones([n_hidden]), tf.zeros([n_hidden])
    scale = model.in_layout(tf.concat, i=ones, j=2 * ones, f=ones, o=ones)
    shift = model.in_layout(tf.concat, i=zeros, j=zeros, f=tf.fill([n_hidden], float(forget_bias)), o=zeros)
    return scale, shift


DTYPES = {"fp32": "float32", "bf16": "bfloat16"}  # config.py's precision: what the matmuls compute in


def matmul(a, b, dtype):
    """a @ b with operands and product in `dtype` (bfloat16: oneDNN sums in float32 inside),
    as float32. bfloat16 is for the matmuls alone: weights, gradients, Adam's state and the
    elementwise gate math stay float32 (TensorFlow's CPU kernels do that no faster in bfloat16,
    and computing the forward's bias and sigmoid in bfloat16 too was measured no faster).
    With float32 the casts are no ops, and grappler still fuses MatMul + BiasAdd + Sigmoid."""
    return tf.cast(tf.matmul(tf.cast(a, dtype), tf.cast(b, dtype)), tf.float32)


KEPT = ("xh", "s", "tj", "c", "tc", "h")  # what the forward pass keeps of every step for the backward pass


def recurrence(x_steps, w, b, n_input, dtype, h=None, c=None):
    """The forward pass over `x_steps` (a list of [batch, n_input]), unrolled, with the scaled
    weights `w` (already in `dtype`) from the state h, c (None: the sequence's start, where h and c
    are zero and the first step multiplies x alone). Per time step, lists of [x_t, h] (xh), the
    gates' sigmoid (s), tanh(j) (tj), c before the step (c: None at the start), tanh(c) (tc) and h;
    and the state after the last step (c_end)."""
    steps = types.SimpleNamespace(**{name: [] for name in KEPT})
    for x_t in x_steps:
        xh = x_t if h is None else tf.concat([x_t, h], axis=1)
        s = tf.sigmoid(tf.nn.bias_add(matmul(xh, w[:n_input] if h is None else w, dtype), b))
        gate = model.blocks(s)  # the j block holds sigmoid(2j)
        tj = 2.0 * gate.j - 1.0
        steps.c.append(c)
        c = gate.i * tj if c is None else gate.f * c + gate.i * tj
        tc = tf.tanh(c)
        h = gate.o * tc
        steps.xh.append(xh)
        steps.s.append(s)
        steps.tj.append(tj)
        steps.tc.append(tc)
        steps.h.append(h)
    steps.c_end = c
    return steps


def backward(steps, dh, dc, w_h_t, dtype, d_every=None):
    """The backward pass through recurrence's `steps`, last step first, from the gradients dh and
    dc (None: none yet) after them, and `d_every`, the gradients of h at each step where a layer
    above reads them: (per step, the gradient of the gates before their sigmoid; dh and dc before
    the first step, unchanged past the sequence's start)."""
    d_steps = [None] * len(steps.s)
    for t in reversed(range(len(steps.s))):
        if d_every is not None:
            dh = d_every[t] if dh is None else dh + d_every[t]
        gate = model.blocks(steps.s[t])
        dc_t = tf.raw_ops.TanhGrad(y=steps.tc[t], dy=dh * gate.o)
        dc = dc_t if dc is None else dc + dc_t
        d_f = tf.zeros_like(dc) if steps.c[t] is None else dc * steps.c[t]
        ds = model.in_layout(tf.concat, i=dc * steps.tj[t], j=2.0 * dc * gate.i, f=d_f, o=dh * steps.tc[t])
        d_steps[t] = tf.raw_ops.SigmoidGrad(y=steps.s[t], dy=ds)
        if steps.c[t] is not None:  # not the sequence's first step: carry on to the one before
            dh = matmul(d_steps[t], w_h_t, dtype)
            dc = dc * gate.f
    return d_steps, dh, dc


def input_gradient(d_steps, w_x_t, dtype):
    """The gradient of the steps' inputs x_t, [steps, batch, n_input], from the gates' (d_steps)."""
    d = tf.stack(d_steps)
    return tf.reshape(matmul(tf.reshape(d, [-1, d.shape[2]]), w_x_t, dtype), [len(d_steps), -1, w_x_t.shape[1]])


def chunk_length(n_steps):
    """The steps a loop iteration unrolls (see looped): n_steps itself up to CHUNK_STEPS (one
    unroll, no loop), else the largest divisor of n_steps not above CHUNK_STEPS."""
    return max(k for k in range(1, min(n_steps, CHUNK_STEPS) + 1) if n_steps % k == 0)


def looped(x, w, b, w_h_t, w_x_t, n_input, dtype):
    """The forward pass of a long sequence as a while loop over chunks of chunk_length steps, each
    unrolled as a short sequence is: the graph stays the size of one chunk whatever the length,
    and the cost per step that of the unroll. Returns (h at the last step, h at every step
    [batch, n_steps, n_hidden], the backward pass: see unrolled)."""
    n_steps, n_hidden = x.shape[1], w.shape[1] // 4
    size = chunk_length(n_steps)
    n_chunks = n_steps // size
    chunks = tf.reshape(time_major(x), [n_chunks, size, -1, n_input])
    start = tf.zeros([tf.shape(x)[0], n_hidden])
    kept = [tf.TensorArray(tf.float32, size=n_steps, element_shape=[None, None]) for _ in KEPT]

    def forward_chunk(k, h, c, *kept):
        steps = recurrence(tf.unstack(chunks[k], num=size), w, b, n_input, dtype, h, c)
        for t in range(size):  # one step at a time: a tensor list holds them without copying
            kept = [array.write(k * size + t, getattr(steps, name)[t]) for array, name in zip(kept, KEPT, strict=True)]
        return (k + 1, steps.h[-1], steps.c_end, *kept)

    _, last, _, *kept = tf.while_loop(lambda k, *_: k < n_chunks, forward_chunk, [0, start, start, *kept])
    kept = dict(zip(KEPT, kept, strict=True))

    def backward_pass(dh, d_every):
        d_every = None if d_every is None else tf.reshape(time_major(d_every), [n_chunks, size, -1, n_hidden])

        def backward_chunk(k, dh, dc, d_kernel, d_bias, *dx):
            steps = types.SimpleNamespace(**{name: [kept[name].read(k * size + t) for t in range(size)]
                                             for name in KEPT})
            from_above = None if d_every is None else tf.unstack(d_every[k], num=size)
            d_steps, dh, dc = backward(steps, dh, dc, w_h_t, dtype, from_above)
            xh, d = tf.concat(steps.xh, axis=0), tf.concat(d_steps, axis=0)
            dx = [array.write(k, input_gradient(d_steps, w_x_t, dtype)) for array in dx]  # where x is trained
            return k - 1, dh, dc, d_kernel + matmul(tf.transpose(xh), d, dtype), d_bias + tf.reduce_sum(d, axis=0), *dx

        dh = start if dh is None else dh
        zeros = [tf.zeros_like(dh), tf.zeros(w.shape), tf.zeros(w.shape[1:])]
        dx = [] if w_x_t is None else [tf.TensorArray(tf.float32, size=n_chunks, element_shape=[size, None, n_input])]
        _, _, _, d_kernel, d_bias, *dx = tf.while_loop(lambda k, *_: k >= 0, backward_chunk,
                                                        [n_chunks - 1, dh, *zeros, *dx])
        return d_kernel, d_bias, time_major(tf.reshape(dx[0].stack(), [n_steps, -1, n_input])) if dx else None

    every_h = time_major(kept["h"].stack())
    return last, every_h, backward_pass


def unrolled(x, w, b, w_h_t, w_x_t, n_input, dtype):
    """The forward pass of a short sequence, every step unrolled. Returns (h at the last step, h at
    every step, the backward pass: (dh at the last step or None, d_every: the gradients of h at every
    step or None) -> (d_kernel, d_bias before scaling, the gradient of x or None without w_x_t))."""
    steps = recurrence(tf.unstack(x, axis=1), w, b, n_input, dtype)

    def backward_pass(dh, d_every):
        from_above = None if d_every is None else tf.unstack(d_every, axis=1)
        d_steps, _, _ = backward(steps, dh, None, w_h_t, dtype, from_above)
        return (weight_gradient(steps.xh, d_steps, n_input, dtype),
                tf.add_n([tf.reduce_sum(d, axis=0) for d in d_steps]),
                None if w_x_t is None else time_major(input_gradient(d_steps, w_x_t, dtype)))

    return steps.h[-1], tf.stack(steps.h, axis=1), backward_pass


def time_major(t):
    return tf.transpose(t, [1, 0, 2])


def outputs(x, kernel, bias, forget_bias, precision="fp32", every_step_trained=False, input_trained=False):
    """(h at every time step, (batch, n_steps, n_hidden); h at the last one, (batch, n_hidden)) for x
    of (batch, n_steps, n_input), as dynamic_rnn's outputs and their last step: both from one forward
    pass, so that a run fetching both (scoring with the answer after every row) computes it once.
    The hand-written gradient (below) flows back from the last step's h (the top layer: the readout
    reads it) or, `every_step_trained`, from h at every step (a layer below: the one above reads
    them); and on to x where `input_trained` (x is the outputs of the layer below)."""
    n_steps, n_input = x.shape[1], x.shape[2]
    scale, shift = gate_scaling(kernel.shape[1] // 4, forget_bias)
    dtype = tf.as_dtype(DTYPES[precision])
    every_h = []  # each chain's h at every step, kept from inside its forward pass
    forward = unrolled if chunk_length(n_steps) == n_steps else looped

    def forward_pass(x, kernel, bias):
        w = tf.cast(kernel * scale, dtype)  # cast once, not at every step
        b = (bias + shift) * scale
        # Transposed once here rather than by a flag on each backward matmul. The
        # scaling comes after the transpose, so the matmuls read a Mul, and grappler
        # cannot fold the transpose back into their flag.
        w_h_t = tf.transpose(kernel[n_input:]) * scale[:, None]
        w_x_t = tf.transpose(kernel[:n_input]) * scale[:, None] if input_trained else None
        return forward(x, w, b, w_h_t, w_x_t, n_input, dtype)

    def gradients(backward_pass, dh, d_every):
        d_kernel, d_bias, dx = backward_pass(dh, d_every)
        return dx, d_kernel * scale, d_bias * scale

    @tf.custom_gradient
    def last_step_trained(x, kernel, bias):
        last, every, backward_pass = forward_pass(x, kernel, bias)
        every_h.append(every)
        return last, lambda dh: gradients(backward_pass, dh, None)

    @tf.custom_gradient
    def every_step_trained_lstm(x, kernel, bias):
        _, every, backward_pass = forward_pass(x, kernel, bias)
        return every, lambda d_every: gradients(backward_pass, None, d_every)

    kernel, bias = tf.convert_to_tensor(kernel), tf.convert_to_tensor(bias)
    batch = tf.shape(x)[0]
    bounds = [batch * k // PARALLEL_CHAINS for k in range(PARALLEL_CHAINS + 1)]
    parts = tf.split(x, tf.stack([bounds[k + 1] - bounds[k] for k in range(PARALLEL_CHAINS)]), axis=0)
    if every_step_trained:
        every = tf.concat([every_step_trained_lstm(part, kernel, bias) for part in parts], axis=0)
        return every, every[:, -1]
    last = tf.concat([last_step_trained(part, kernel, bias) for part in parts], axis=0)
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
