"""The layers import one way (docs/architecture.md): a test of the source, not of behaviour."""

from __future__ import annotations

import ast
from importlib import resources
from pathlib import Path

import pytest

PACKAGE = Path(str(resources.files("imovsp")))

# The model layer: what a valuation needs, from a listing's fields to a price, its range,
# reasons and comparables, and the artifact it is saved in.
MODEL = (
    "artifact",
    "bounds",
    "builder",
    "comparables",
    "data",
    "drift",
    "ensemble",
    "explain",
    "features",
    "geo",
    "metrics",
    "neighbours",
    "predict",
    "price_index",
    "ranges",
    "single_row",
    "valuation",
    "valuer",
)
# What no module of the model layer may import; prediction never imports fitting or scoring.
ABOVE_MODEL = (
    "imovsp.api",
    "imovsp.web",
    "imovsp.server",
    "imovsp.cli",
    "imovsp.monitoring",
    "imovsp.batch",
)
FITTING = ("imovsp.training", "imovsp.evaluation")
# The uses of a model (layer 4): the interfaces are built on them, never the other way.
USES = ("answer", "as_of", "batch", "batch_dask", "formats", "rollout")
INTERFACES = ("imovsp.api", "imovsp.web", "imovsp.server", "imovsp.cli")


def package(name: str) -> list[str]:
    """The modules of the package ``imovsp.<name>``, as :func:`imports` takes them."""
    return sorted(
        p.relative_to(PACKAGE).with_suffix("").as_posix().replace("/", ".")
        for p in (PACKAGE / name).rglob("*.py")
    )


def imports(module: str) -> set[str]:
    """The imovsp modules ``module`` imports at run time (``if TYPE_CHECKING:`` blocks and
    imports inside functions count too: only type-checking ones are left out)."""
    tree = ast.parse((PACKAGE / f"{module.replace('.', '/')}.py").read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            skip.update(id(n) for child in node.body for n in ast.walk(child))
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("imovsp"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("imovsp"):
            found.add(node.module)
            if node.module == "imovsp":
                found.update(f"imovsp.{a.name}" for a in node.names)
    return found


def reaches(found: set[str], prefixes: tuple[str, ...]) -> set[str]:
    return {m for m in found if any(m == p or m.startswith(f"{p}.") for p in prefixes)}


@pytest.mark.parametrize("module", MODEL)
def test_the_model_layer_imports_nothing_above_it(module: str) -> None:
    assert not reaches(imports(module), ABOVE_MODEL), module


@pytest.mark.parametrize("module", MODEL)
def test_prediction_does_not_import_fitting_or_evaluation(module: str) -> None:
    assert not reaches(imports(module), FITTING), module


@pytest.mark.parametrize("module", USES)
def test_the_uses_of_a_model_import_no_interface(module: str) -> None:
    assert not reaches(imports(module), INTERFACES), module


# The server (layer 6) assembles the API and the page and runs them; they never reach up into
# it, and the API does not know the page.
@pytest.mark.parametrize("module", [*package("api"), *package("web")])
def test_the_api_and_the_page_import_nothing_of_the_server(module: str) -> None:
    assert not reaches(imports(module), ("imovsp.server",)), module


@pytest.mark.parametrize("module", package("api"))
def test_the_api_does_not_import_the_page(module: str) -> None:
    assert not reaches(imports(module), ("imovsp.web",)), module


def test_the_bounds_import_nothing_of_imovsp() -> None:
    # The CLI reads them before any command runs, and starts without the scientific stack.
    assert imports("bounds") == set()


def test_the_walk_sees_what_it_must() -> None:
    # The checks above would pass on a walk that found nothing.
    assert "imovsp.predict" in imports("valuer")
    assert "imovsp.training" not in imports("valuer")
    assert {"imovsp.evaluation", "imovsp.predict"} <= imports("training")
    assert {"imovsp.api", "imovsp.web"} <= imports("server.app")
    assert "imovsp.server.supervisor" in imports("server.reloads")
    assert {"api.fast_path", "api.routes", "web.pages"} <= {*package("api"), *package("web")}


def test_nothing_above_the_model_reads_the_valuers_feature_builder() -> None:
    # The Valuer is the model layer's one entry point: districts, the plain flat, the places
    # and typical bands come from it, never from valuer.builder's fitted attributes.
    inside = {f"{m}.py" for m in (*MODEL, "training", "evaluation", "synthetic")}
    readers = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(PACKAGE).as_posix() in inside:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if any(isinstance(n, ast.Attribute) and n.attr == "builder" for n in ast.walk(tree)):
            readers.append(path.relative_to(PACKAGE).as_posix())
    assert readers == []


def test_the_cli_has_one_error_type() -> None:
    # One way a user's mistake ends (one line, exit code 2): cli.common.UserError.
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(
                "ClickException" in ast.unparse(base) for base in node.bases
            ):
                found.append(f"{path.relative_to(PACKAGE).as_posix()}:{node.name}")
    assert found == ["cli/common.py:UserError"]
