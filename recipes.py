"""The training recipes of the Neural Predictor, defined once: every script, the engine and the predictor object read them.

    python -c "import recipes; print(recipes.RECIPES['improved'])"

- "faithful" (the default): the public PyTorch reproduction's semantics exactly: the GCN with
  its propagation rule, hidden size 144, Adam lr 1e-4, weight decay 1e-3, cosine annealing
  over 300 epochs, batches of 10, dropout 0.1, MSE on normalised labels.
- "improved": chosen by 5-fold cross-validation on the training architectures only
  (crossval.py): the uniform propagation rule, 600 epochs, lr 1e-3, MSE plus a pairwise hinge.
- "best": chosen by 5-fold cross-validation on the training architectures only, over the directions
  of later predictor papers (docs/beyond.md): the improved recipe with MSE plus a pairwise
  binary cross-entropy (PINAT's ranking loss), no weight decay, lr 3e-4 and an ensemble of 5
  models, each started from a self-supervised pre-training of the GCN over the whole space
  (pretrain.py, 30 epochs; made once and cached).
A recipe with overrides: `RECIPES["faithful"].replace(epochs=100)`.
"""
import dataclasses

from model import PROPAGATION_RULES, READOUT_INITS, REGRESSION_LOSSES


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Everything that decides how a predictor trains and what its inputs are (its propagation rule)."""

    propagation: str = "faithful"  # the GCN's backward propagation: "faithful" rownorm(P^T) or "uniform"
    readout_init: str = "torch"  # the readout layers' init: torch.nn.Linear's default, or "xavier"
    hidden: int = 144  # the GCN's hidden size
    layers: int = 3  # the GCN's graph-convolution layers
    epochs: int = 300
    lr: float = 1e-4
    wd: float = 1e-3  # Adam's L2 weight decay
    batch_size: int = 10
    dropout: float = 0.1
    loss: str = "mse"  # "mse", "hinge" (pairwise ranking) or "mse+hinge"
    ensemble: int = 1  # models averaged (seeds seed, seed + 1, ...)
    pretrain: int = 0  # epochs of self-supervised pre-training over the whole space (pretrain.py); 0: none
    augment: bool = False  # each epoch, every training cell in a random topological order (mlp, cnn, transformer)

    def __post_init__(self):
        problem = recipe_problem(self)
        if problem:
            raise ValueError(f"recipe: {problem}")

    def replace(self, **overrides):
        """A copy with some fields changed (ValueError for an unknown field or a bad value)."""
        unknown = set(overrides) - {field.name for field in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"recipe: unknown field(s) {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(field.name for field in dataclasses.fields(self))}")
        return dataclasses.replace(self, **overrides)

    def as_dict(self):
        return dataclasses.asdict(self)

    def fit_options(self):
        """engine.fit's keyword arguments that the recipe sets (the ensemble acts outside fit, on the training
        sets; the propagation rule makes the input tensors, and fit reads it only for the pre-training)."""
        return {"loss": self.loss, "hidden": self.hidden, "layers": self.layers, "epochs": self.epochs, "lr": self.lr,
                "wd": self.wd, "batch_size": self.batch_size, "dropout": self.dropout,
                "readout_init": self.readout_init, "pretrain": self.pretrain, "propagation": self.propagation,
                "augment": self.augment}


def recipe_problem(recipe):
    """What is wrong with a recipe's values, or None."""
    if recipe.propagation not in PROPAGATION_RULES:
        return f"propagation {recipe.propagation!r}: expected one of {', '.join(PROPAGATION_RULES)}"
    if recipe.readout_init not in READOUT_INITS:
        return f"readout_init {recipe.readout_init!r}: expected one of {', '.join(READOUT_INITS)}"
    if recipe.loss not in REGRESSION_LOSSES:
        return f"loss {recipe.loss!r}: expected one of {', '.join(REGRESSION_LOSSES)}"
    for name in ("hidden", "layers", "epochs", "batch_size", "ensemble"):
        value = getattr(recipe, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            return f"{name} must be a positive integer, got {value!r}"
    if isinstance(recipe.pretrain, bool) or not isinstance(recipe.pretrain, int) or recipe.pretrain < 0:
        return f"pretrain must be a non-negative integer (epochs; 0 for none), got {recipe.pretrain!r}"
    if not isinstance(recipe.augment, bool):
        return f"augment must be True or False, got {recipe.augment!r}"
    if not (isinstance(recipe.lr, (int, float)) and 0 < recipe.lr < float("inf")):
        return f"lr must be a positive finite number, got {recipe.lr!r}"
    if not (isinstance(recipe.wd, (int, float)) and 0 <= recipe.wd < float("inf")):
        return f"wd must be a non-negative finite number, got {recipe.wd!r}"
    if not (isinstance(recipe.dropout, (int, float)) and 0 <= recipe.dropout < 1):
        return f"dropout must be in [0, 1), got {recipe.dropout!r}"
    return None


FAITHFUL = Recipe()
IMPROVED = Recipe(propagation="uniform", epochs=600, lr=1e-3, loss="mse+hinge")
BEST = Recipe(propagation="uniform", epochs=600, lr=3e-4, wd=0.0, loss="mse+pairwise-bce", ensemble=5, pretrain=30)
RECIPES = {"faithful": FAITHFUL, "improved": IMPROVED, "best": BEST}


def get_recipe(recipe="faithful", **overrides):
    """A Recipe from a name of RECIPES or a Recipe, with overrides."""
    if isinstance(recipe, str):
        if recipe not in RECIPES:
            raise ValueError(f"recipe {recipe!r}: expected one of {', '.join(RECIPES)} or a recipes.Recipe")
        recipe = RECIPES[recipe]
    elif not isinstance(recipe, Recipe):
        raise ValueError(f"recipe must be a name ({', '.join(RECIPES)}) or a recipes.Recipe, got {recipe!r}")
    return recipe.replace(**overrides) if overrides else recipe
