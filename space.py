"""The search space of sweep.py: the settings a sweep varies, each with its range.

A plain Python file like config.py; `python sweep.py --space=FILE` takes another. Each
line names a setting of config.py and how Optuna may draw it:

    uniform(low, high)        a float between low and high
    log_uniform(low, high)    a float, drawn evenly in log scale (rates that span decades)
    int_range(low, high)      a whole number from low to high (step=... for a stride)
    choice(a, b, ...)         one of the values given

Settings left out keep config.py's value, or the sweep's --name=value.
"""
learning_rate = log_uniform(1e-4, 3e-2)  # Adam's step size: the tutorial's 0.001 in the middle
n_hidden = choice(32, 64, 128, 256)  # LSTM units: the size of its memory
forget_bias = uniform(0.0, 2.0)  # how open the keep gate starts (the tutorial: 1.0)
batch_size = choice(50, 100, 200)  # images per step
num_layers = choice(1, 2)  # LSTM layers stacked (TF1's MultiRNNCell): the tutorial has one
