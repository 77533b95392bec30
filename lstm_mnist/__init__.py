"""The machinery around the tutorial: what train_lstm_mnist.py and the other entry points reach
through a few calls whose names say what they do. Nothing here changes the tutorial's graph,
hyperparameters or log lines.

    tf_setup     TensorFlow set up for TF1 graph style; every session's config
    settings     config.py's values, --name=value overrides, the rules; a run folder's config.json
    errors       the project's errors, stop signals, and how an entry point reports them
    files        files written whole or not at all
    model        the Model the script's build_graph returns
    runs         a run: what the loop reaches through `run`, a list of parts (new_run says which)
    part         what a run's parts have in common: the hooks, the record of a step
    run_folder   the run folder (a part), and the run's closing lines
    divergence   the divergence stop (a part): a loss that is not finite, or above max_loss
    metrics      metrics.csv and the TensorBoard events
    checkpoints  saving, finding and restoring checkpoints, with the data position
    phases       the timing lines (Training time, Steady state, Time)
    scoring      a whole data set in batches, or one image
    reading      the answer after every row read
    gates        the write, keep and read gates and the cell state after every row (a part: the gates line)
    images       a user's image prepared as the model sees it
    plots        the PNGs a run leaves
    fast_lstm    the same LSTM built for speed (cell = "fast")
    distributed  TF1 parameter servers and workers running the script's loop
    launch       a cluster of the script on 127.0.0.1 (--local_cluster)
    keras_bridge a checkpoint's weights as a Keras 3 model, and back (export.py --keras, export.py MODEL.keras)
    notebook     what tutorial.ipynb adds: a fresh session on re-run, a stop button that keeps the model
    tuning       sweeps on Optuna (sweep.py): the search space, a trial's run, HParams, the table
"""
