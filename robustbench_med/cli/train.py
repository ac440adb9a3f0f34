"""``medrobust train``: train a model and store it in the zoo."""

from __future__ import annotations

import warnings

from robustbench_med.cli.common import (
    DEFAULT_RESULTS,
    AdvEps,
    Adversarial,
    AdvStep,
    AdvSteps,
    Amp,
    Augment,
    BatchSize,
    BnSettle,
    DataRoot,
    Dataset,
    Defense,
    DefenseOptions,
    Device,
    Download,
    Epochs,
    ImageSize,
    Model,
    NTrain,
    NVal,
    Options,
    Quiet,
    Recipe,
    ResultsDir,
    Seed,
    check_folder,
    err,
    fmt,
    out,
    render_event,
)


def train(model: Model = None, dataset: Dataset = None, defense: Defense = None,
          image_size: ImageSize = 128, epochs: Epochs = 200, batch_size: BatchSize = 32,
          recipe: Recipe = "paper", augment: Augment = True, n_train: NTrain = None,
          n_val: NVal = None, seed: Seed = 0, data_root: DataRoot = None, download: Download = False,
          results_dir: ResultsDir = DEFAULT_RESULTS, device: Device = None,
          model_option: Options = None, defense_option: DefenseOptions = None,
          adversarial: Adversarial = False, adv_eps: AdvEps = "4/255", adv_steps: AdvSteps = 10,
          adv_step: AdvStep = "1/255", bn_settle: BnSettle = "recalibrate", amp: Amp = "off", quiet: Quiet = False) -> None:
    """Train a model (the paper's recipe by default) and store it in the zoo."""
    from robustbench_med.data.loading import load_dataset
    from robustbench_med.device import resolve_device
    from robustbench_med.model_request import model_request
    from robustbench_med.models.builder import check_buildable
    from robustbench_med.models.zoo import Zoo
    from robustbench_med.workflow import OneClassWarning, strategy_for, train_and_save

    check_folder("--results-dir", results_dir, inner="zoo")
    request = model_request(model, dataset, defense=defense, image_size=image_size, epochs=epochs,
                            batch_size=batch_size, recipe=recipe, augment=augment, n_train=n_train,
                            n_val=n_val, seed=seed, model_option=model_option,
                            defense_option=defense_option, adversarial=adversarial,
                            adv_eps=adv_eps, adv_steps=adv_steps, adv_step=adv_step, bn_settle=bn_settle,
                            amp=amp)
    dev = resolve_device(device)
    data = load_dataset(request.dataset, data_root=data_root, image_size=image_size,
                        augment=augment, n_train=n_train, n_val=n_val, download=download)
    config = request.config()
    check_buildable(config.model, data.info, defense=config.defense, model_options=config.model_options,
                    defense_options=config.defense_options)
    strategy_for(request)  # refuse a defense's recipe options now, not after the training message
    err.print(f"training {config.label} on {request.dataset} ({len(data.train)} images "
              f"at {image_size}px, {epochs} epochs, recipe {recipe}) on {dev}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OneClassWarning)  # said below, in one line
        ckpt = train_and_save(request, data, Zoo(results_dir / "zoo"), dev,
                              progress=None if quiet else render_event)
    m = ckpt.metrics
    out.print(f"checkpoint {ckpt.path}\nval accuracy {m['val_accuracy']:.4f}, val AUC "
              f"{fmt(m.get('val_auc'))} (epoch {m['best_epoch']}, kept by {m.get('selection')}), "
              f"test accuracy {m['test_accuracy']:.4f}, test AUC {fmt(m.get('test_auc'))} "
              f"(n={m['n_test']}), sha256 {ckpt.sha256[:16]}")
    if m.get("one_class"):
        err.print("[yellow]warning: the kept model is right on one validation class only (a constant "
                  "predictor); train longer or with another recipe before reading robustness rows[/]")
