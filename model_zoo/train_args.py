"""The command line of `model_zoo.train`: flags, recipes as their defaults, and every check that
can be made before anything is loaded (each a one-line error)."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from crema_tools.errors import CremaToolsError
from crema_tools.variants import VARIANTS

from .balancing import METHODS, get_method, hyperparameter_names, hyperparameter_types
from .cli import OneLineParser
from .config import ModelZooError
from .fusion import FUSIONS
from .optimizers import OPTIMIZERS, SCHEDULES, check_loss
from .recipes import Recipe, list_recipes, load_recipe
from .registry import create_model, get_model_entry, list_models


def yes_no(text: str) -> bool:
    """A true/false flag value (argparse's `type=bool` would read "false" as True)."""
    if text.lower() in ("true", "yes", "1"):
        return True
    if text.lower() in ("false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def parse_args(argv=None) -> argparse.Namespace:
    ap = OneLineParser(
        description="Fine-tune a model_zoo encoder on a built CREMA-D config (accelerate launch -m model_zoo.train ...).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"models: {', '.join(list_models())}\nvariants: {', '.join(VARIANTS)}\n"
               f"recipes (the paper's Table 4): {', '.join(list_recipes())}")
    ap.add_argument("--recipe", help="start from a recipe; any flag below overrides it")
    ap.add_argument("--model", help="a name from model_zoo.list_models()")
    ap.add_argument("--variant", help="the config to train on, e.g. 2d-multimodal")
    ap.add_argument("--data", required=True, help="a built dataset folder or Hub dataset repo id")
    ap.add_argument("--out", required=True, type=Path, help="folder for checkpoints, the best model, card and metrics")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--batch-size", type=int, help="per process")
    ap.add_argument("--lr", type=float)
    ap.add_argument("--dropout", type=float, help="ViT, I3D, Simple3D, VideoMAE")
    ap.add_argument("--channels", type=int, choices=(1, 3), help="1: grayscale input")
    ap.add_argument("--frames", type=int, help="3D: padded length (CNNs, 135) or frames sampled (VideoMAE, 16/32)")
    ap.add_argument("--pretrained", action=argparse.BooleanOptionalAction, default=None,
                    help="start from the encoder's published weights")
    ap.add_argument("--seed", type=int, default=0, help="training seed (initialisation, order)")
    ap.add_argument("--seeds", type=int, nargs="+", help="several runs, one per seed, in <out>/seed-<n>, then a summary")
    ap.add_argument("--optimizer", choices=OPTIMIZERS, help="paper: adam; OGM-GE's line: sgd")
    ap.add_argument("--momentum", type=float, help="sgd's momentum (OGM-GE: 0.9)")
    ap.add_argument("--weight-decay", type=float, help="(OGM-GE: 1e-4)")
    ap.add_argument("--schedule", choices=SCHEDULES, help="lr schedule (paper: constant; OGM-GE: step)")
    ap.add_argument("--lr-decay-epochs", type=int, help="--schedule step: decay every N epochs (OGM-GE: 70)")
    ap.add_argument("--lr-decay-ratio", type=float, help="--schedule step: the decay factor (default 0.1)")
    ap.add_argument("--fusion", choices=FUSIONS, help="separate-encoder models: the fusion head")
    ap.add_argument("--model-option", action="append", default=[], metavar="NAME=VALUE", dest="model_options",
                    help="a keyword argument of the model's builder, e.g. freeze=false (fine-tune a speech encoder); "
                         "repeatable; values are read as JSON where they parse (numbers, true/false), else as text")
    ap.add_argument("--method", "--modulation", dest="method", choices=tuple(METHODS),
                    help="separate-encoder models: a balancing method (model_zoo.balancing; default joint)")
    for name, kind in hyperparameter_types().items():
        takers = [method for method, cls in METHODS.items() if name in {f.name for f in fields(cls)}]
        ap.add_argument(f"--{name.replace('_', '-')}", type=yes_no if kind is bool else kind,
                        help=f"{', '.join(takers)}: a hyperparameter (default: the method's paper value)")
    ap.add_argument("--gradient-accumulation-steps", type=int, default=1)
    ap.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"), default=None,
                    help="default: accelerate launch's setting")
    ap.add_argument("--sync-batchnorm", action="store_true", help="multi-GPU: BatchNorm statistics over all processes")
    ap.add_argument("--precise-bn-batches", type=int, default=200,
                    help="before each validation, recompute BatchNorm statistics of the current weights over up "
                         "to N training batches (0: keep the running averages)")
    ap.add_argument("--no-shuffle", action="store_true", help="keep the shards' order (for equivalence checks)")
    ap.add_argument("--checkpointing-steps", type=int, default=0, help="also save the training state every N steps")
    ap.add_argument("--resume-from", help="a checkpoint folder under <out>/checkpoints, or 'latest'")
    ap.add_argument("--report-to", default=None, help="accelerate trackers, e.g. tensorboard, wandb, all")
    ap.add_argument("--num-workers", type=int, default=0, help="DataLoader workers per process")
    ap.add_argument("--push-to-hub", metavar="ORG/NAME", help="upload the best model with its card when done")
    args = ap.parse_args(argv)
    try:
        recipe = load_recipe(args.recipe) if args.recipe else None
        args.model = args.model or (recipe and recipe.model)
        args.variant = args.variant or (recipe and recipe.variant)
        if not args.model or not args.variant:
            raise ModelZooError("give --recipe, or --model and --variant")
        defaults = recipe or Recipe(name="", model=args.model, variant=args.variant)
        fusion_given = args.fusion
        for name in ("epochs", "batch_size", "lr", "dropout", "channels", "frames", "pretrained", "optimizer",
                     "momentum", "weight_decay", "schedule", "lr_decay_epochs", "lr_decay_ratio", "fusion", "method"):
            if getattr(args, name) is None:
                setattr(args, name, getattr(defaults, name))
        given = {name: getattr(args, name) for name in hyperparameter_names()}
        args.balancing = get_method(args.method, **{**defaults.method_options, **{k: v for k, v in given.items()
                                                                                  if v is not None}}) \
            if args.method else None
        if args.balancing is not None and args.balancing.fusion:  # a method that trains its own head (MLA's shared one)
            if fusion_given not in (None, args.balancing.fusion):
                raise ModelZooError(f"--method {args.method} trains the {args.balancing.fusion} fusion head, not "
                                    f"{fusion_given}: drop --fusion or give --fusion {args.balancing.fusion}")
            args.fusion = args.balancing.fusion
        if args.balancing is None and any(v is not None for v in given.values()):
            raise ModelZooError(f"--{next(k for k, v in given.items() if v is not None).replace('_', '-')} "
                                "is a balancing method's; give --method too")
        check_loss(defaults.loss)
        args.model_options = dict(_model_option(o) for o in args.model_options)
        args.recipe_values = recipe.to_dict() if recipe else None
        if args.dropout is not None and get_model_entry(args.model).dropout_arg is None:
            with_dropout = [name for name in list_models() if get_model_entry(name).dropout_arg]
            raise ModelZooError(f"{args.model} has no dropout option (models with one: {', '.join(with_dropout)})")
        for name in ("epochs", "batch_size", "gradient_accumulation_steps"):
            if getattr(args, name) < 1:
                raise ModelZooError(f"--{name.replace('_', '-')} must be at least 1")
        check_model_args(args)
    except CremaToolsError as e:
        ap.error(str(e))
    return args


def check_model_args(args) -> None:
    """An unknown model or variant, or an option the model refuses: said now, in one line, before
    anything is loaded (published weights included)."""
    entry = get_model_entry(args.model)
    if args.variant not in entry.variants:
        raise ModelZooError(f"{args.model} supports variants {', '.join(entry.variants)}, not {args.variant!r}")
    if args.pretrained and entry.pretrained is None:
        raise ModelZooError(f"{args.model} has no published weights; drop --pretrained")
    if args.frames is not None and VARIANTS[args.variant].family != "3d":
        raise ModelZooError(f"--frames applies to 3D models; {args.model} on {args.variant} takes one image")
    if args.frames is not None and args.frames < 1:
        raise ModelZooError("--frames must be at least 1")
    separate = getattr(entry.model_class, "modalities", None) is not None
    if args.balancing is not None:
        if not separate:
            raise ModelZooError(f"--method {args.method} balances separate encoders; {args.model} shares one: train "
                                f"{args.model}_separate (one of {', '.join(n for n in list_models() if n.endswith('_separate'))})")
        args.balancing.check(args.epochs)
        if args.balancing.modulates_each_step and args.gradient_accumulation_steps > 1:
            raise ModelZooError(f"--method {args.method} modulates each step's gradients; "
                                "use --gradient-accumulation-steps 1 (a larger --batch-size or more processes instead)")
    if args.fusion is not None and not separate:
        raise ModelZooError(f"--fusion applies to separate-encoder models; {args.model} shares one encoder")


def make_model(args):
    entry, kwargs = get_model_entry(args.model), {}
    if args.dropout is not None:
        kwargs[entry.dropout_arg] = args.dropout
    if args.channels is not None:
        kwargs["channels"] = args.channels
    if args.frames is not None and entry.frames_arg:
        kwargs[entry.frames_arg] = args.frames  # a transformer's frame count is part of the model
    if args.fusion is not None:
        kwargs["fusion"] = args.fusion
    kwargs.update(args.model_options)
    try:
        model = create_model(args.model, variant=args.variant, pretrained=args.pretrained, **kwargs)
    except TypeError as e:  # an option the builder does not take
        raise ModelZooError(f"{args.model} does not take {', '.join(args.model_options) or 'these options'} ({e})") from None
    cfg = model.pretrained_cfg
    if args.frames is not None:
        if cfg.temporal == "pad" and args.frames != cfg.frames:
            from dataclasses import replace

            model.pretrained_cfg = replace(cfg, frames=args.frames)  # CNNs take any length: pad to this one
    return model


def _model_option(text: str) -> tuple[str, object]:
    import json

    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise ModelZooError(f"--model-option {text!r}: give NAME=VALUE, e.g. freeze=false")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value
