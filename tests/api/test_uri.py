import pytest
from kubetune.api.uri import ParsedUri, UriError, parse_uri


@pytest.mark.parametrize(
    ("uri", "parsed"),
    [
        ("hf://Qwen/Qwen2.5-0.5B-Instruct@main", ParsedUri("hf", "Qwen/Qwen2.5-0.5B-Instruct", "", "main")),
        ("hf://gpt2", ParsedUri("hf", "gpt2", "", None)),
        ("s3://models/team-a/support-bot/", ParsedUri("s3", "models", "team-a/support-bot/")),
        ("pvc://shared-models/qwen-0.5b", ParsedUri("pvc", "shared-models", "qwen-0.5b")),
        ("file:///data/feedback.jsonl", ParsedUri("file", "", "/data/feedback.jsonl")),
    ],
)
def test_each_scheme_parses_into_its_parts(uri, parsed):
    assert parse_uri(uri) == parsed
    assert str(parse_uri(uri)) == uri


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("gs://bucket/x", "must be one of hf://"),
        ("models/x", "must be one of hf://"),
        ("s3:///prefix", "must name a bucket"),
        ("s3://UPPER/x", "valid S3 bucket"),
        ("pvc://claim-only", "must name a path inside the claim"),
        ("pvc://claim/", "must name a path inside the claim"),
        ("pvc://Team_B:claim/x", "in the job's namespace"),
        ("pvc://claim/../other", "'..'"),
        ("file://relative/path", "three slashes"),
        ("hf://a/b/c", "Hugging Face repo id"),
        ("hf://org/name@", "revision"),
    ],
)
def test_bad_uris_say_which_form_is_expected(uri, says):
    with pytest.raises(UriError, match=says.replace("(", r"\(").replace(".", r"\.")):
        parse_uri(uri)


def test_join_builds_child_uris():
    assert parse_uri("s3://bkt/out/").join("adapter") == "s3://bkt/out/adapter"
    assert parse_uri("pvc://c/runs/x").join("checkpoints", "checkpoint-10") == (
        "pvc://c/runs/x/checkpoints/checkpoint-10"
    )


@pytest.mark.parametrize("claim", ["a..b", "a.-b", "-a", "A"])
def test_pvc_claim_must_be_a_dns_subdomain(claim):
    """A PersistentVolumeClaim name is a DNS-1123 subdomain (IsDNS1123Subdomain)."""
    with pytest.raises(UriError, match="PersistentVolumeClaim"):
        parse_uri(f"pvc://{claim}/data")
