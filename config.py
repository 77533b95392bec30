"""Hyperparameters of the run, with the tutorial's names and values.

Edit this file to change every run; override one run with `--name=value`, e.g.
`python train_lstm_mnist.py --training_iters=20000 --learning_rate=3e-3`.
Each value's type is the type of its default here, and the command line is checked
against it. `python train_lstm_mnist.py --help` lists them all.
"""
import os

_HERE = os.path.dirname(os.path.abspath(__file__))

# The tutorial's network parameters
n_input = 28  # MNIST data input (img shape: 28*28): pixels per time step
n_steps = 28  # timesteps: image rows read one after the other
n_hidden = 128  # hidden layer num of features (LSTM units)
n_classes = 10  # MNIST total classes (0-9 digits)
learning_rate = 0.001  # Adam learning rate
training_iters = 100000  # train while step * batch_size < training_iters (999 steps)
batch_size = 100  # images per training step
display_step = 10  # log minibatch loss and accuracy every this many steps
test_len = 128  # the tutorial scores the first this many test images
forget_bias = 1.0  # added to the LSTM forget gate (BasicLSTMCell's forget_bias)

# Beyond the tutorial
num_layers = 1  # LSTM layers, stacked by TF1's MultiRNNCell: each reads the outputs of the one below (1: the tutorial)
data_dir = os.path.join(_HERE, "data", "mnist")  # folder of the four MNIST files (downloaded if missing)
validation_size = 5000  # first this many training images held out for validation
seed = 1  # graph-level TensorFlow seed and data shuffling: same seed, same log on one machine
max_loss = 1e4  # stop when a logged minibatch loss exceeds this: training diverged (0: never)
clip_norm = 0.0  # clip the gradients to this global norm before Adam (0: never, as the tutorial)

# Recipes for the long tasks (docs/tasks.md); the defaults are the tutorial's Adam and the cell's own weights
optimizer = "adam"  # "adam": the tutorial's Adam; "rmsprop": RMSProp, which the sequential-MNIST papers train with
rmsprop_decay = 0.9  # RMSProp's decay of its mean square gradient (the papers': 0.9)
rmsprop_momentum = 0.0  # RMSProp's momentum (the papers': 0)
recurrent_init = "cell"  # the h rows of the kernel: "cell" (BasicLSTMCell's Glorot uniform), "orthogonal", "identity"
chrono_init = 0  # >= 3: Tallec and Ollivier's chrono initialization of the gate biases for this many steps (0: off)
keep_best = False  # also keep the checkpoint of the best validation accuracy (best.ckpt-N), scored on the test set

# The task (lstm_mnist/tasks.py): how an image becomes a sequence
task = "rows"  # "rows": the tutorial's rows; "pixels": 784 steps of 1 pixel; "permuted": those in a fixed random order
permutation_seed = 1  # the permuted task's pixel order (task = "permuted" only)

# What a run leaves behind (in out_dir/<YYYYmmdd-HHMMSS>/)
out_dir = os.path.join(_HERE, "runs")  # parent folder of the run folders
eval_every = 100  # validation accuracy every this many steps (0: never)
checkpoint_every = 100  # save a checkpoint every this many steps, and at the end
keep_checkpoints = 3  # how many of the latest checkpoints to keep
plots = True  # write curves.png, predictions.png, confusion.png and reading.png at the end

# Beyond one machine (distributed.py; only with --job_name, TF_CONFIG or --local_cluster)
sync_replicas = False  # False: each worker updates the shared weights at once (async); True: SyncReplicasOptimizer
cluster_timeout = 60  # seconds any wait in a cluster may last (a ps, the chief, a step's gradients) before giving up

# Speed (see benchmarks/README.md)
cell = "basic"  # "basic": the tutorial's BasicLSTMCell + dynamic_rnn; "fast": the same LSTM built for speed
precision = "fp32"  # "bf16": the fast cell's matmuls in bfloat16, weights and Adam in float32 (AVX512-BF16/AMX CPUs)
intra_op_threads = 1  # threads inside one op (0: TensorFlow's choice); this model's ops are too small to split
inter_op_threads = 2  # ops run side by side (0: TensorFlow's choice); 1 + 2 measured fastest on 2 cores
