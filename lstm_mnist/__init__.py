"""The machinery around the tutorial: what train_lstm_mnist.py and the other entry points reach
through a few calls whose names say what they do. It stands on its own: no module here imports a
top-level one (config.py, data.py, the scripts); the entry points hand it what it needs. Nothing
here changes the tutorial's graph, hyperparameters or log lines.

    tf_setup      TensorFlow set up for TF1 graph style, imported on first use; every session's config
    model         the model as one object, and the one place that knows TF1's LSTM cell (layout, variables, layers)
    fast_lstm     the same LSTM built for speed (cell = "fast"), layer by layer
    tasks         how an image becomes a sequence: rows, pixels, permuted pixels
    clipping      the gradients clipped to a global norm (clip_norm)
    settings      a run's settings: config.py's names and defaults, overrides, the rules
    hardware      what this machine can do: bfloat16 matmuls, memory for the sizes asked
    saved_run     a run folder's config.json, and what a resumed run may change
    command_line  an entry point's --name=value and own arguments
    entry_point   how every entry point runs: its command line, its context, its errors as one line
    errors        the project's errors and their exit codes
    signals       what SIGINT and SIGTERM do, phase by phase
    context       one command's signals, phase clock and lines, shared without passing them along
    files         files written whole or not at all
    placement     alone, or a task of a TF1 cluster: decided once, handed to the graph, the session, the run
    distributed   TF1 parameter servers and workers running the script's loop; nothing outlives the cluster
    launch        a cluster of the script on 127.0.0.1 (--local_cluster)
    runs          a run: what the loop reaches through `run`, a list of parts (new_run says which), its Results
    part          what a run's parts have in common: the hooks, the record of a step
    run_folder    the run folder (a part), and the run's closing lines
    divergence    the divergence stop (a part): a loss that is not finite, or above max_loss
    metrics       metrics.csv and the TensorBoard events
    checkpoints   saving, finding and restoring checkpoints, with the data position; the best one (keep_best)
    phases        the timing lines (Training time, Steady state, Time) and the progress of a long run
    scoring       a whole data set in batches, or one image
    reading       the answer after every step read
    gates         the write, keep and read gates: the gates line, the units' order
    images        a user's image prepared as the model sees it
    plots         the PNGs a run leaves
    keras_bridge  a checkpoint's weights as a Keras 3 model, and back (export.py --keras, export.py MODEL.keras)
    notebook      what tutorial.ipynb adds: its settings checked, a fresh session on re-run, a stop button
    tuning        sweeps on Optuna (sweep.py): the search space, a trial's run, HParams, the table
"""
