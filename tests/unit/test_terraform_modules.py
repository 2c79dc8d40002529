"""Static checks of terraform/ (no terraform binary here): every file parses, every reference
resolves, the examples wire the modules completely, and the security properties the issue asks
for are present in the modules as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.terraform import (
    BOOTSTRAP_SCRIPT,
    DATA_REF,
    LOCAL_REF,
    MODULE_REF,
    RESOURCE_REF,
    TERRAFORM,
    UNUSED_NOTE,
    TfDir,
    all_tf_files,
    example_dirs,
    module_dirs,
    module_source_dir,
    parse_dir,
    refs,
    strings,
    unwrap,
)

import hcl2  # isort: skip

TF_DIRS = module_dirs() + example_dirs()
META_ARGS = {"source", "version", "providers", "count", "for_each", "depends_on"}


def _id(p: Path) -> str:
    return str(p.relative_to(TERRAFORM))


@pytest.fixture(scope="module", params=TF_DIRS, ids=_id)
def tfdir(request: pytest.FixtureRequest) -> TfDir:
    return parse_dir(request.param)


@pytest.fixture(scope="module")
def aws() -> TfDir:
    return parse_dir(TERRAFORM / "modules" / "aws-edge-fleet")


@pytest.fixture(scope="module")
def gcp() -> TfDir:
    return parse_dir(TERRAFORM / "modules" / "gcp-edge-fleet")


def test_layout() -> None:
    assert [p.name for p in module_dirs()] == ["aws-edge-fleet", "gcp-edge-fleet"]
    assert [p.name for p in example_dirs()] == ["aws", "gcp"]
    for d in example_dirs():
        assert (d / "README.md").is_file(), f"{_id(d)} needs a README"
    assert (TERRAFORM / "README.md").is_file()


@pytest.mark.parametrize("path", all_tf_files(), ids=_id)
def test_every_tf_file_parses(path: Path) -> None:
    with open(path, encoding="utf-8") as f:
        doc = hcl2.load(f)
    assert doc, f"{_id(path)} parsed to nothing"


def test_every_used_variable_is_declared(tfdir: TfDir) -> None:
    undeclared = tfdir.used_variables - set(tfdir.variables)
    assert not undeclared, f"{_id(tfdir.path)}: var.{sorted(undeclared)} used but not declared"


def test_every_declared_variable_is_used_or_documented(tfdir: TfDir) -> None:
    unused = [
        name
        for name, var in tfdir.variables.items()
        if name not in tfdir.used_variables
        and not UNUSED_NOTE.search(tfdir.variable_block_text(var))
    ]
    assert not unused, (
        f"{_id(tfdir.path)}: variables {unused} are declared but never used "
        "(use them, remove them, or add '# unused: <reason>' to the block)"
    )


def test_every_variable_has_a_description_and_type(tfdir: TfDir) -> None:
    for name, var in tfdir.variables.items():
        assert unwrap(var.body.get("description")), f"{_id(tfdir.path)}: var.{name} description"
        assert var.body.get("type") is not None, f"{_id(tfdir.path)}: var.{name} type"


def test_locals_data_and_resources_referenced_exist(tfdir: TfDir) -> None:
    tree = list(tfdir.files.values())
    missing_locals = refs(LOCAL_REF, tree) - set(tfdir.locals)
    missing_data = refs(DATA_REF, tree) - set(tfdir.data_sources)
    missing_res = refs(RESOURCE_REF, tree) - set(tfdir.resources)
    missing_mod = refs(MODULE_REF, tree) - set(tfdir.modules)
    where = _id(tfdir.path)
    assert not missing_locals, f"{where}: local.{sorted(missing_locals)} not defined"
    assert not missing_data, f"{where}: data sources {sorted(missing_data)} not defined"
    assert not missing_res, f"{where}: resources {sorted(missing_res)} not defined"
    assert not missing_mod, f"{where}: modules {sorted(missing_mod)} not defined"


def test_outputs_reference_existing_objects(tfdir: TfDir) -> None:
    assert tfdir.outputs, f"{_id(tfdir.path)} has no outputs"
    for name, body in tfdir.outputs.items():
        value = body["value"]
        assert unwrap(body.get("description")), f"output {name}: description"
        found = (
            refs(RESOURCE_REF, value)
            | {("data", *r) for r in refs(DATA_REF, value)}
            | {("local", r) for r in refs(LOCAL_REF, value)}
            | {("module", r) for r in refs(MODULE_REF, value)}
        )
        assert found, f"output {name} refers to nothing: {value!r}"
        for ref in found:
            if ref[0] == "local":
                assert ref[1] in tfdir.locals, f"output {name}: local.{ref[1]}"
            elif ref[0] == "module":
                assert ref[1] in tfdir.modules, f"output {name}: module.{ref[1]}"
            elif ref[0] == "data":
                assert ref[1:] in tfdir.data_sources, f"output {name}: data.{ref[1]}.{ref[2]}"
            else:
                assert ref in tfdir.resources, f"output {name}: {ref[0]}.{ref[1]}"


def test_module_outputs_used_by_examples_exist() -> None:
    for example in example_dirs():
        ex = parse_dir(example)
        for mod_name, block in ex.modules.items():
            mod = parse_dir(module_source_dir(example, block))
            used = {
                m.group(1)
                for s in strings(list(ex.files.values()))
                for m in re.finditer(rf"module\.{mod_name}\.(\w+)", s)
            }
            assert used <= set(mod.outputs), f"{_id(example)}: {sorted(used - set(mod.outputs))}"


@pytest.mark.parametrize("example", example_dirs(), ids=_id)
def test_examples_wire_modules_with_all_required_variables(example: Path) -> None:
    ex = parse_dir(example)
    assert ex.modules, f"{_id(example)} calls no module"
    for mod_name, block in ex.modules.items():
        source = module_source_dir(example, block)
        assert source.is_dir(), f"module {mod_name}: source {source} missing"
        mod = parse_dir(source)
        given = {k for k in block if not k.startswith("__")} - META_ARGS
        required = {n for n, v in mod.variables.items() if v.required}
        assert required <= given, f"module {mod_name}: missing {sorted(required - given)}"
        unknown = given - set(mod.variables)
        assert not unknown, f"module {mod_name}: arguments {sorted(unknown)} are not variables"


@pytest.mark.parametrize("example", example_dirs(), ids=_id)
def test_examples_pin_their_providers(example: Path) -> None:
    ex = parse_dir(example)
    pinned = {}
    for _, block in ex.blocks("terraform"):
        for rp in block.get("required_providers", []):
            for name, spec in unwrap(rp).items():
                if not name.startswith("__"):
                    pinned[name] = unwrap(spec)
    assert pinned, f"{_id(example)}: no required_providers"
    for name, spec in pinned.items():
        assert str(unwrap(spec["source"])).startswith("hashicorp/")
        assert re.match(r"^(~>|=)\s*\d+\.\d+", str(unwrap(spec["version"]))), name
    providers = {k for _, b in ex.blocks("provider") for k in b}
    assert set(pinned) <= providers, f"{_id(example)}: a provider block per required provider"


def _settings_keys_in_script() -> set[str]:
    text = BOOTSTRAP_SCRIPT.read_text()
    block = re.search(r"readonly SETTINGS=\((.*?)\)", text, re.S)
    assert block, "SETTINGS array not found in the bootstrap script"
    return set(block.group(1).split())


@pytest.mark.parametrize("module", module_dirs(), ids=_id)
def test_modules_render_the_shared_bootstrap(module: Path) -> None:
    mod = parse_dir(module)
    user_data = " ".join(strings(mod.locals["user_data"]))
    assert "templatefile(" in user_data
    assert "bootstrap/cloud-init.yaml.tftpl" in user_data
    assert "bootstrap/edge-bootstrap.sh" in user_data
    for name in ("bootstrap_script", "settings", "trusted_root"):
        assert name in user_data, f"templatefile input {name} missing"
    settings = unwrap(mod.locals["bootstrap_settings"])
    keys = {k for k in settings if not k.startswith("__")}
    unknown = keys - _settings_keys_in_script()
    assert not unknown, f"{_id(module)}: settings {sorted(unknown)} unknown to the script"
    assert {"EDGE_BUNDLE_SOURCE", "EDGE_PROXY_PROTOCOL", "EDGE_TRUSTED_PROXIES"} <= keys


# --- the security properties of issue 7, as written in the modules


def _attr(body: dict, *path: str) -> object:
    node: object = body
    for key in path:
        node = unwrap(node)
        assert isinstance(node, dict), f"{path}: {key} not reachable"
        node = node[key]
    return unwrap(node)


def test_aws_launch_template_hardening(aws: TfDir) -> None:
    lt = aws.resources[("aws_launch_template", "node")]
    assert _attr(lt, "metadata_options", "http_tokens") == "required"
    assert _attr(lt, "metadata_options", "http_put_response_hop_limit") == 1
    assert _attr(lt, "network_interfaces", "associate_public_ip_address") is False
    assert _attr(lt, "block_device_mappings", "ebs", "encrypted") is True
    assert "local.user_data" in str(_attr(lt, "user_data"))


def test_aws_asg_uses_elb_health_and_instance_refresh(aws: TfDir) -> None:
    asg = aws.resources[("aws_autoscaling_group", "node")]
    assert _attr(asg, "health_check_type") == "ELB"
    assert _attr(asg, "instance_refresh", "strategy") == "Rolling"
    assert "latest_version" in str(_attr(asg, "launch_template", "version"))


def test_aws_target_group_sends_proxy_v2_and_checks_readyz(aws: TfDir) -> None:
    tg = aws.resources[("aws_lb_target_group", "node")]
    assert _attr(tg, "protocol") == "TCP"
    assert '"v2"' in str(_attr(tg, "proxy_protocol_v2"))
    hc = _attr(tg, "health_check")
    assert _attr(hc, "protocol") == "HTTP"
    assert _attr(hc, "path") == "/readyz"
    assert "var.admin_port" in str(_attr(hc, "port"))
    assert unwrap(aws.variables["proxy_protocol"].body["default"]) == "v2"
    lb = aws.resources[("aws_lb", "this")]
    assert _attr(lb, "load_balancer_type") == "network"
    listener = aws.resources[("aws_lb_listener", "node")]
    assert _attr(listener, "protocol") == "TCP"


def test_aws_bundle_bucket_protection(aws: TfDir) -> None:
    sse = aws.resources[("aws_s3_bucket_server_side_encryption_configuration", "bundle")]
    assert _attr(sse, "rule", "apply_server_side_encryption_by_default", "sse_algorithm") == (
        "aws:kms"
    )
    pab = aws.resources[("aws_s3_bucket_public_access_block", "bundle")]
    for key in (
        "block_public_acls",
        "block_public_policy",
        "ignore_public_acls",
        "restrict_public_buckets",
    ):
        assert _attr(pab, key) is True, key
    assert (
        _attr(
            aws.resources[("aws_s3_bucket_versioning", "bundle")],
            "versioning_configuration",
            "status",
        )
        == "Enabled"
    )
    logging = aws.resources[("aws_s3_bucket_logging", "bundle")]
    assert "var.access_log_bucket" in str(_attr(logging, "target_bucket"))
    policy = " ".join(strings(aws.data_sources[("aws_iam_policy_document", "bundle_bucket")]))
    assert "aws:SecureTransport" in policy and "Deny" in policy


def test_aws_node_role_reads_only_the_bundle_prefix(aws: TfDir) -> None:
    doc = aws.data_sources[("aws_iam_policy_document", "node")]
    statements = doc["statement"]
    actions = {a for s in statements for a in strings(s.get("actions"))}
    assert actions == {"s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket", "kms:Decrypt"}
    text = " ".join(strings(statements))
    assert "${var.bundle_prefix}/*" in text
    assert '"*"' not in text and "'*'" not in text
    assert ("aws_iam_instance_profile", "node") in aws.resources


def test_aws_node_security_group_admits_only_the_nlb(aws: TfDir) -> None:
    ingress = [
        b for (t, _), b in aws.resources.items() if t == "aws_vpc_security_group_ingress_rule"
    ]
    node_rules = [b for b in ingress if "aws_security_group.node.id" in str(b)]
    assert node_rules
    for rule in node_rules:
        assert "aws_security_group.nlb.id" in str(_attr(rule, "referenced_security_group_id"))
        assert "cidr_ipv4" not in rule
    assert aws.variables["cdn_cidrs"].required, "the CDN ranges must be chosen, not defaulted"


def test_aws_outputs(aws: TfDir) -> None:
    assert {"nlb_dns_name", "bundle_bucket", "node_role_arn"} <= set(aws.outputs)


def test_gcp_instance_template_hardening(gcp: TfDir) -> None:
    tpl = gcp.resources[("google_compute_instance_template", "node")]
    shielded = _attr(tpl, "shielded_instance_config")
    for key in ("enable_secure_boot", "enable_vtpm", "enable_integrity_monitoring"):
        assert _attr(shielded, key) is True, key
    assert "access_config" not in unwrap(_attr(tpl, "network_interface")), "external IP"
    metadata = _attr(tpl, "metadata")
    assert _attr(metadata, "enable-oslogin") == "TRUE"
    assert _attr(metadata, "block-project-ssh-keys") == "TRUE"
    assert "local.user_data" in str(_attr(metadata, "user-data"))
    assert "google_service_account.node.email" in str(_attr(tpl, "service_account", "email"))


def test_gcp_service_account_reads_only_the_bundle_bucket(gcp: TfDir) -> None:
    grants = [(t, b) for (t, _), b in gcp.resources.items() if "iam" in t]
    assert len(grants) == 1
    kind, grant = grants[0]
    assert kind == "google_storage_bucket_iam_member"
    assert _attr(grant, "role") == "roles/storage.objectViewer"
    assert "google_storage_bucket.bundle.name" in str(_attr(grant, "bucket"))


def test_gcp_mig_autoheals_on_readyz_and_rolls(gcp: TfDir) -> None:
    mig = gcp.resources[("google_compute_region_instance_group_manager", "node")]
    assert "google_compute_health_check.readyz" in str(_attr(mig, "auto_healing_policies"))
    hc = gcp.resources[("google_compute_health_check", "readyz")]
    assert _attr(hc, "http_health_check", "request_path") == "/readyz"
    assert _attr(mig, "update_policy", "type") == "PROACTIVE"
    assert _attr(mig, "update_policy", "max_unavailable_fixed") == 0


def test_gcp_lb_modes_and_node_config_follow(gcp: TfDir) -> None:
    assert (
        _attr(gcp.resources[("google_compute_target_tcp_proxy", "proxy")], "proxy_header")
        == "PROXY_V1"
    )
    assert ("google_compute_forwarding_rule", "passthrough") in gcp.resources
    proxy_protocol = str(unwrap(gcp.locals["proxy_protocol"]))
    assert '"off"' in proxy_protocol and '"v1"' in proxy_protocol
    assert "local.proxy_protocol" in str(gcp.locals["bootstrap_settings"])
    assert "local.trusted_proxies" in str(gcp.locals["bootstrap_settings"])
    ranges = set(strings(gcp.locals["google_proxy_ranges"]))
    assert {"35.191.0.0/16", "130.211.0.0/22"} <= ranges


def test_gcp_firewall_admits_only_google_and_cdn_ranges(gcp: TfDir) -> None:
    rules = {n: b for (t, n), b in gcp.resources.items() if t == "google_compute_firewall"}
    assert set(rules) == {"health_checks", "traffic"}
    for rule in rules.values():
        assert _attr(rule, "direction") == "INGRESS"
        assert "0.0.0.0/0" not in str(rule)
        assert "target_tags" in rule
    assert "local.health_check_ranges" in str(_attr(rules["health_checks"], "source_ranges"))
    assert "local.traffic_sources" in str(_attr(rules["traffic"], "source_ranges"))
    sources = str(gcp.locals["traffic_sources"])
    assert "var.cdn_cidrs" in sources and "local.google_proxy_ranges" in sources


def test_gcp_bundle_bucket_protection(gcp: TfDir) -> None:
    bucket = gcp.resources[("google_storage_bucket", "bundle")]
    assert _attr(bucket, "uniform_bucket_level_access") is True
    assert _attr(bucket, "public_access_prevention") == "enforced"
    assert _attr(bucket, "versioning", "enabled") is True


@pytest.mark.parametrize("module", module_dirs(), ids=_id)
def test_readme_tables_list_every_variable_and_output(module: Path) -> None:
    readme = (TERRAFORM / "README.md").read_text()
    mod = parse_dir(module)
    for kind, names in (("variables", mod.variables), ("outputs", mod.outputs)):
        header = f"### {module.name}: {kind}\n"
        assert header in readme, f"README lacks the section {header.strip()!r}"
        section = readme.split(header, 1)[1].split("\n### ", 1)[0]
        rows = set(re.findall(r"^\| `([\w-]+)` \|", section, re.M))
        assert rows == set(names), f"{header.strip()}: README {sorted(rows ^ set(names))}"


def test_every_local_is_used(tfdir: TfDir) -> None:
    used = refs(LOCAL_REF, list(tfdir.files.values()))
    unused = set(tfdir.locals) - used
    assert not unused, f"{_id(tfdir.path)}: locals {sorted(unused)} are never used"


def test_no_conditional_between_object_literals(tfdir: TfDir) -> None:
    # `cond ? { a = .. } : { b = .. }` fails at plan time ("inconsistent conditional result
    # types") when the objects differ; a for-expression filter is the portable form.
    for path in tfdir.files:
        text = path.read_text()
        assert not re.search(r"\?\s*\{", text), f"{_id(path)}: conditional with an object literal"
        assert not re.search(r":\s*\{\s*\}", text), f"{_id(path)}: conditional with an empty object"


def test_the_checks_catch_what_they_claim_to(tmp_path: Path) -> None:
    """The reference checks above, run on a module with one mistake of each kind."""
    (tmp_path / "main.tf").write_text(
        """
variable "used" {
  type = string
  validation {
    condition     = length(var.used) > 0
    error_message = "used: empty"
  }
}
variable "unused" {
  type = string
}
variable "kept" {
  # unused: kept for interface compatibility with the v1 module
  type = string
}
variable "only_validated" {
  type = string
  validation {
    condition     = var.only_validated != ""
    error_message = "only_validated: empty"
  }
}
resource "aws_s3_bucket" "this" {
  bucket = "${var.used}-${var.undeclared}-${local.missing}"
}
output "bad" {
  value = aws_s3_bucket.other.id
}
"""
    )
    tf = parse_dir(tmp_path)
    assert tf.used_variables - set(tf.variables) == {"undeclared"}
    unused = {
        n
        for n, v in tf.variables.items()
        if n not in tf.used_variables and not UNUSED_NOTE.search(tf.variable_block_text(v))
    }
    assert unused == {"unused", "only_validated"}
    assert refs(LOCAL_REF, list(tf.files.values())) - set(tf.locals) == {"missing"}
    assert refs(RESOURCE_REF, tf.outputs["bad"]["value"]) - set(tf.resources) == {
        ("aws_s3_bucket", "other")
    }
