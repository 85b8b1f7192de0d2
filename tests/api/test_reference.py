from kubetune.reference import BEGIN, END, field_reference, with_reference


def test_readme_field_reference_matches_the_models(repo_root):
    readme = (repo_root / "README.md").read_text()
    assert BEGIN in readme and END in readme
    assert with_reference(readme) == readme, "README field reference is stale: run `make docs`"


def test_reference_lists_every_documented_field():
    text = field_reference()
    for field in ("`hyperparameters.learningRate`", "`resources.gpuMemory`", "`model.finetuneJobRef`",
                  "`dataset.validation.splitRatio`", "`thresholds`"):
        assert field in text
    assert "| `hyperparameters.learningRate` | number (0, 1] |  | Peak learning rate; default by " \
        "method: 2e-4 for lora and qlora, 2e-5 for full" in text
