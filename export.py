"""Take a trained run elsewhere: export it as a SavedModel, TensorFlow's own exchange format.

    python export.py runs/RUN                      # -> runs/RUN/saved_model (the latest checkpoint)
    python export.py runs/RUN/model.ckpt-500 out/  # that checkpoint, into out/
    python export.py runs/RUN --tflite             # and model.tflite inside it, for TensorFlow Lite
    python export.py runs/RUN --keras              # and model.keras inside it, a Keras 3 model (docs/migrate.md)
    python export.py model.keras runs/from_keras   # the way back: a Keras LSTM + Dense as a run folder

The model is rebuilt with the run's saved settings (config.json; `--name=value`
overrides as in train_lstm_mnist.py) and its checkpoint restored. The export
needs nothing of this project to be used: TensorFlow 2's `tf.saved_model.load`,
`saved_model_cli` and TF Serving take it (docs/export.md).

    serving_default  images float32 [None, 28, 28], pixels in [0, 1] as data.py gives them
                     -> probabilities float32 [None, 10], classes int64 [None]
    reading          images -> step_probabilities float32 [None, 28, 10]: the answer after every row
    gates            images -> write, keep, read, candidate, cell, output float32 [None, 28, n_hidden]:
                     the gates, tanh(j), the cell state and the output after every row (lstm_mnist/gates.py);
                     with num_layers > 1, those of the bottom layer, and write_layer2, ... for the others
"""
import contextlib
import errno
import os
import shutil

import predict
import train_lstm_mnist as script
from lstm_mnist import checkpoints, context, entry_point, errors, keras_bridge, saved_run, tasks
from lstm_mnist.model import Gates, keras_weights, tf1_weights
from lstm_mnist.tf_setup import tf, tf1

EXPORT_NAME = "saved_model"  # the folder inside the run folder, where OUT is not given
TFLITE_NAME = "model.tflite"  # inside the export, with --tflite
KERAS_NAME = "model.keras"  # inside the export, with --keras


def signatures(images, graph, model):
    """The SavedModel's signatures, by their names: `images` in, the outputs of `graph` that bear
    the names of `model`'s (a copy of its graph: checked_copy)."""
    def predict_signature(outputs):
        outputs = {name: graph.get_tensor_by_name(tensor.name) for name, tensor in outputs.items()}
        return tf1.saved_model.predict_signature_def(inputs={"images": images}, outputs=outputs)

    return {"serving_default": predict_signature({"probabilities": model.probabilities, "classes": model.predicted}),
            "reading": predict_signature({"step_probabilities": model.step_probabilities}),
            "gates": predict_signature({gate_output_name(name, layer): getattr(layer_gates, name)
                                        for layer, layer_gates in enumerate(model.gates, start=1)
                                        for name in Gates.NAMES})}


def gate_output_name(name, layer):
    """The gates signature's name of a gate of a layer (from 1, the bottom): `write` of the bottom layer,
    `write_layer2` of the next."""
    return name if layer == 1 else f"{name}_layer{layer}"


def checked_copy(sess, model):
    """(session, images): the restored model's graph again, with its variables' values, whose input
    is `images` through a shape check. TensorFlow 2 calls a TF1 signature with any shape it is given
    (it falls back when the shape does not bind) and the tutorial's `x` would then fail deep inside
    the LSTM ("transpose expects a vector of size 2"); the check names the shape instead."""
    graph = tf.Graph()
    with graph.as_default():
        images = tf1.placeholder(tf.float32, model.x.shape, name="images")
        checked = tf.ensure_shape(images, model.x.shape, name="images_shape")
        tf1.train.import_meta_graph(tf1.train.export_meta_graph(graph=model.graph), input_map={model.x.name: checked})
        copy = tf1.Session(graph=graph)
        with model.graph.as_default():
            values = sess.run(tf1.global_variables())
        for variable, value in zip(tf1.global_variables(), values, strict=True):
            variable.load(value, copy)
    return copy, images


def export(cfg, checkpoint, out, tflite=False, keras=False):
    """Write the SavedModel of `checkpoint` (and, with `tflite`, model.tflite inside it; with
    `keras`, model.keras) to `out` whole or not at all (written_whole). Returns `out`."""
    with written_whole(out, "the export", "exporting") as building:
        sess, model = predict.restored_session(cfg, checkpoint)  # one restore for the SavedModel and Keras
        with sess:
            write_saved_model(sess, model, building)
            if keras:
                write_keras(cfg, sess, model, os.path.join(building, KERAS_NAME))
        if tflite:
            write_tflite(cfg, checkpoint, building)
    print(f"Exported {checkpoint} to {out}")
    print(f"Signatures: serving_default (images [None, {cfg.n_steps}, {cfg.n_input}] -> probabilities [None, 10], "
          f"classes [None]), reading (images -> step_probabilities [None, {cfg.n_steps}, 10]), gates (images -> "
          f"{', '.join(Gates.NAMES)} [None, {cfg.n_steps}, {cfg.n_hidden}]"
          f"{'' if cfg.num_layers == 1 else f', and *_layer2 to *_layer{cfg.num_layers} for the layers above'})")
    if tflite:
        print(f"TFLite: {os.path.join(out, TFLITE_NAME)} (input x [None, 28, 28]; outputs probabilities, predicted)")
    if keras:
        print(f"Keras: {os.path.join(out, KERAS_NAME)} (keras.saving.load_model; layers {keras_bridge.LSTM_LAYER}, "
              f"{keras_bridge.READOUT_LAYER} (logits), probabilities)")
    return out


@contextlib.contextmanager
def written_whole(out, kind, doing):
    """The folder to build `out` in: a temporary name beside it, renamed to `out` when the block ends,
    removed if it fails, so `out` is whole or not there; OUT's parent folders are made where missing
    (and removed again if it fails). A failure to write is one line naming `kind` (what `out` is); a
    signal stops it saying what `doing` leaves."""
    out = os.path.abspath(out)
    refuse_a_users_folder(out)
    made = missing_folders(os.path.dirname(out))
    building = f"{out}.partial-{os.getpid()}"
    context.now(f"while {doing}: nothing is left at {out}, the run is untouched")
    try:
        for folder in made:
            os.mkdir(folder)
        yield building
        context.check()
        publish(building, out)
        made = []
    except (OSError, tf.errors.OpError) as e:
        context.check()  # a Ctrl-C also ends Keras's process (keras_bridge): that failure is the stop's
        raise errors.cannot_write(f"{kind} {out}", checkpoints.error_text(e), "then try again (nothing was left "
                                  "there)") from e
    finally:
        shutil.rmtree(building, ignore_errors=True)
        for folder in reversed(made):
            with contextlib.suppress(OSError):
                os.rmdir(folder)


def missing_folders(folder):
    """The folders that `folder` needs made, the outermost first."""
    missing = []
    while folder and not os.path.isdir(folder):
        missing.append(folder)
        folder = os.path.dirname(folder)
    return missing[::-1]


def publish(building, out):
    """`building` renamed to `out`, which another process may have written meanwhile (the same command twice at
    once): then a ConfigError, and `out` stays the other's."""
    try:
        os.replace(building, out)
    except OSError as e:
        if e.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
            raise
        raise errors.ConfigError(f"{out}: written meanwhile by another process (the same command twice at once?); "
                                 f"it is left as that one wrote it: give a new path") from None


def write_keras(cfg, sess, model, path):
    """The restored model as a Keras 3 model file (lstm_mnist/keras_bridge.py), either cell: each
    layer's Keras LSTM weights, then the readout's."""
    *cells, readout, readout_bias = sess.run(model.variables)
    lstm = [weights for layer, kernel, bias in zip(model.layers, cells[::2], cells[1::2], strict=True)
            for weights in keras_weights(kernel, bias, layer.n_input, cfg.forget_bias)]
    keras_bridge.write_keras_model(keras_bridge.sizes(cfg, model.order), [*lstm, readout, readout_bias], path)


def run_from_keras(cfg, keras_path, out):
    """The way back: the Keras 3 model at `keras_path` (the tutorial's shape for the settings `cfg`)
    as a run folder `out` with its settings and a checkpoint of step 0, which predict.py, serve.py,
    export.py and --resume take as any run's. Written whole or not at all (written_whole). Returns `out`."""
    with written_whole(out, "the run folder", f"converting {keras_path}") as building:
        os.mkdir(building)
        handed_over = os.path.join(building, "keras-weights.npz")  # removed once read
        weights = keras_bridge.read_keras_model(keras_path, keras_bridge.sizes(cfg, tasks.pixel_order(cfg)),
                                                handed_over)
        *lstm, readout, readout_bias = weights
        cells = [array for k in range(0, len(lstm), 3) for array in tf1_weights(*lstm[k:k + 3], cfg.forget_bias)]
        model = script.build_graph(cfg)
        with script.session(cfg, model) as sess, model.graph.as_default():
            for variable, value in zip(model.variables, [*cells, readout, readout_bias], strict=True):
                variable.load(value, sess)
            saved_run.save_settings(building, cfg, then="then convert again")
            checkpoint = model.saving.saver.save(sess, os.path.join(building, checkpoints.CHECKPOINT_NAME),
                                                      global_step=0, write_meta_graph=False)
    print(f"Converted {keras_path} to the run folder {out} ({os.path.basename(checkpoint)}, the settings in "
          f"config.json); use it as a run's: python predict.py {out}")
    return out


def write_saved_model(sess, model, folder):
    """The SavedModel of the restored model in `sess` (predict.restored_session) to `folder`."""
    copy, images = checked_copy(sess, model)
    with copy, copy.graph.as_default():
        builder = tf1.saved_model.Builder(folder)
        builder.add_meta_graph_and_variables(copy, [tf1.saved_model.tag_constants.SERVING],
                                             signature_def_map=signatures(images, copy.graph, model),
                                             strip_default_attrs=True)
        builder.save()


def write_tflite(cfg, checkpoint, folder):
    """model.tflite in `folder`, converted from the fast cell's graph: the same LSTM and variables,
    unrolled. TFLite's converter refuses BasicLSTMCell's: its dynamic_rnn loop, built in the same
    graph as its gradients, carries their accumulators (`tf.EmptyTensorList` without a static shape)."""
    source = folder
    if cfg.cell != "fast":
        source = f"{folder}.fast"
        sess, model = predict.restored_session(script.SETTINGS.make({"cell": "fast"}, saved=vars(cfg)), checkpoint)
        with sess:
            write_saved_model(sess, model, source)
    try:
        converted = tf.lite.TFLiteConverter.from_saved_model(source, signature_keys=["serving_default"]).convert()
    finally:
        if source != folder:
            shutil.rmtree(source, ignore_errors=True)
    with open(os.path.join(folder, TFLITE_NAME), "wb") as f:
        f.write(converted)


def refuse_a_users_folder(out):
    """An OUT that holds anything is never overwritten: it may be a user's."""
    if os.path.exists(out) and not (os.path.isdir(out) and not os.listdir(out)):
        raise errors.ConfigError(f"{out}: exists and is not an empty folder; give a new path for the export "
                                 f"(or remove it first)")


def add_arguments(parser):
    parser.add_argument("model", metavar="RUN_DIR|CKPT|MODEL.keras",
                        help="a run folder (its latest checkpoint), a checkpoint, or a Keras model to make a run of")
    parser.add_argument("out", nargs="?", metavar="OUT",
                        help=f"the SavedModel's folder, new or empty (default: RUN_DIR/{EXPORT_NAME}); for a "
                             f"Keras model, the run folder to write (default: out_dir/MODEL)")
    parser.add_argument("--tflite", action="store_true", help=f"also write {TFLITE_NAME} for TensorFlow Lite")
    parser.add_argument("--keras", action="store_true", help=f"also write {KERAS_NAME}, the same model in Keras 3")


def export_from_command_line(overrides, arguments):
    if arguments.model.endswith(".keras"):
        return convert_from_keras(overrides, arguments)
    if arguments.model.endswith((".h5", ".hdf5")):
        raise errors.ConfigError(f"{arguments.model}: a Keras 2 HDF5 file; the way back takes a Keras 3 .keras file: "
                                 f"load it with Keras 2 (tf.keras) and save it again as MODEL.keras")
    cfg, checkpoint = saved_run.open_saved_run(arguments.model, overrides, script.SETTINGS)
    out = arguments.out or os.path.join(os.path.dirname(checkpoint), EXPORT_NAME)
    export(cfg, checkpoint, out, arguments.tflite, arguments.keras)


def main(argv=None):
    return entry_point.run(argv, __doc__, add_arguments, script.SETTINGS, export_from_command_line)


def convert_from_keras(overrides, arguments):
    """export.py MODEL.keras [OUT]: the Keras model as a run folder, for the settings with `overrides`."""
    if arguments.tflite or arguments.keras:
        raise errors.ConfigError(f"{arguments.model}: --tflite and --keras export a run; a Keras model becomes a "
                                 f"run folder first (export.py {arguments.model} OUT), then export that")
    if not os.path.isfile(arguments.model):
        raise errors.ConfigError(f"{arguments.model}: no such Keras model file; give the path of a .keras file")
    cfg = script.SETTINGS.make(overrides)
    name = os.path.splitext(os.path.basename(arguments.model))[0]
    run_from_keras(cfg, arguments.model, arguments.out or os.path.join(cfg.out_dir, name))


if __name__ == "__main__":
    entry_point.exit_process(main())
