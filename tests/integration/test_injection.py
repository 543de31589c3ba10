"""Strings that try to become code: they are refused, or they travel only as data.

Hostile box names, hostnames, file destinations, scripts, manifests, contents and host paths go
through the request handler into VagrantCli with a stub `vagrant` on PATH. Each must either be
refused with INVALID_REQUEST, or end up only as data: in machine.json or in an asset file, with
the Vagrantfile byte-identical to the template and the stub called only with fixed arguments.
Where ruby is installed, the real template is loaded with the machine.json vcm wrote (and with
hand-made hostile ones) under a recording stand-in for Vagrant. If any hostile string ran, it
would create the canary file or remove the victim directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from importlib import resources
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_vagrant_cli_stub import STUB, Stub
from vcm.adapters.host_files import FilesRoot
from vcm.adapters.json_store import JsonStateStore
from vcm.adapters.protocol import RequestHandler
from vcm.adapters.vagrant_cli import MACHINE_FILE, VagrantCli
from vcm.domain.allocation import IpPool
from vcm.domain.registry import Registry
from vcm.domain.service import VcmService

BOX = "vcm/bookworm-test"
POOL = "192.168.35.0/24"
BOX_LIST = "1,,box-name,vcm/bookworm-test\n1,,box-provider,docker\n1,,box-version,0\n"
FIXED_CALLS = {"box list --machine-readable", "up --provider=docker"}
TEMPLATE = (resources.files("vcm.adapters") / "vagrant_template" / "Vagrantfile").read_bytes()

# Stands in for Vagrant while the real template loads: records every config call as data.
RECORDER = r"""
require "json"
$vcm_calls = []
class VcmRecorder
  def initialize(path)
    @path = path
  end

  def method_missing(name, *args, **options, &block)
    path = "#{@path}.#{name}"
    $vcm_calls << [path, args, options]
    child = VcmRecorder.new(path)
    block.call(child) if block
    child
  end

  def respond_to_missing?(*)
    true
  end
end

module Vagrant
  def self.configure(version)
    yield VcmRecorder.new("config")
  end
end

load "Vagrantfile"
File.write(ENV.fetch("VCM_RECORD"), JSON.generate($vcm_calls))
"""


def hostile_strings(canary: Path, victim: Path) -> list[str]:
    """Each would create the canary (or remove the victim) if any layer ran it."""
    c = str(canary)
    return [
        f'x"; system("touch {c}"); "',
        f"x'; system('touch {c}'); '",
        f"#{{system('touch {c}')}}",
        f"#{{`touch {c}`}}",
        f"`touch {c}`",
        f"$(touch {c})",
        f"${{IFS}}$(touch${{IFS}}{c})",
        f"; touch {c}; rm -rf {victim}",
        f"| touch {c}",
        f"&& touch {c} &&",
        f"\ntouch {c}\n",
        f"x\n__END__\n`touch {c}`",
        f"%x(touch {c})",
        f"<%= `touch {c}` %>",
        f"{{{{ touch {c} }}}}",
        f'\\"; touch {c} #',
        f"--provider=virtualbox --destination={c}",
        "-f",
        "--help",
        "a\rb\tc",
        "../../../../etc/passwd",
        "\u202eé\U0001f600",
        "\\",
        '"',
        "'",
    ]


HOSTILE = hostile_strings(Path("/CANARY"), Path("/VICTIM"))
LINE_BREAKING = {text for text in HOSTILE if "\n" in text or "\r" in text}


@dataclass
class Rig:
    handler: RequestHandler
    machines: Path
    files_root: Path
    stub: Stub
    canary: Path
    victim: Path

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.handler.handle(json.dumps(request).encode())

    def real(self, text: str) -> str:
        """The hostile text with the placeholders pointing at this test's canary and victim."""
        return text.replace("/CANARY", str(self.canary)).replace("/VICTIM", str(self.victim))

    def assert_nothing_ran(self) -> None:
        assert not self.canary.exists(), "a hostile string was executed on the host"
        assert (self.victim / "keep").exists(), "a hostile string removed the victim directory"
        calls = {call for _, call in self.stub.calls()}
        assert calls <= FIXED_CALLS, f"vagrant was called with other arguments: {calls}"

    def project(self, vm_id: str) -> tuple[Path, dict[str, Any]]:
        root = self.machines / vm_id
        assert (root / "Vagrantfile").read_bytes() == TEMPLATE
        spec: dict[str, Any] = json.loads((root / MACHINE_FILE).read_text(encoding="utf-8"))
        return root, spec


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Rig:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "vagrant").write_text(STUB)
    (bin_dir / "vagrant").chmod(0o755)
    control = tmp_path / "stub"
    control.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("STUB_DIR", str(control))
    stub = Stub(control)
    stub.on("box-list", out=BOX_LIST)
    files_root = tmp_path / "files"
    (files_root / "sub").mkdir(parents=True)
    (files_root / "sub" / "ok.txt").write_text("ok")
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep").write_text("keep")
    files = FilesRoot(files_root)
    machines = tmp_path / "state" / "machines"
    vagrant = VagrantCli(
        machines_dir=machines,
        files=files,
        provider="docker",
        guest="debian",
        lxc_bridge="vlxcbr1",
        up_timeout=30,
        command_timeout=30,
        box_add_timeout=30,
    )
    service = VcmService(
        registry=Registry(JsonStateStore(tmp_path / "state" / "state.json")),
        vagrant=vagrant,
        host_files=files,
        pool=IpPool.with_host_sides(IPv4Network(POOL)),
        domain="example.com",
    )
    monkeypatch.chdir(tmp_path)
    return Rig(RequestHandler(service), machines, files_root, stub, tmp_path / "canary", victim)


def load_template(root: Path) -> tuple[subprocess.CompletedProcess[str], list[Any]]:
    """Load the project's Vagrantfile with real ruby; what it passed to Vagrant's config."""
    if shutil.which("ruby") is None:
        pytest.skip("ruby is not installed (Debian's vagrant package brings it)")
    record = root / "recorded.json"
    result = subprocess.run(
        ["ruby", "-e", RECORDER],
        cwd=root,
        env={**os.environ, "VCM_RECORD": str(record)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    calls = json.loads(record.read_text(encoding="utf-8")) if record.exists() else []
    return result, calls


def provisions(calls: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(args[0], options) for path, args, options in calls if path == "config.vm.provision"]


# -- box names and hostnames: refused -----------------------------------------------------------


@pytest.mark.parametrize("text", [*HOSTILE, "a\x00b", "box\x00"])
def test_hostile_box_names_and_hostnames_are_refused(rig: Rig, text: str) -> None:
    text = rig.real(text)
    for request in (
        {"command": "create", "box": text},
        {"command": "create", "box": f"vcm/{text}"},
        {"command": "create", "box": BOX, "hostname": text},
    ):
        reply = rig.ask(request)
        assert (reply["error"], reply["code"]) == (True, "INVALID_REQUEST"), (request, reply)
    assert rig.ask({"command": "info", "subcommand": "box all"})["boxes"] == []
    assert rig.stub.calls() == [], "a refused box must not reach vagrant"
    rig.assert_nothing_ran()


# -- scripts, manifests, contents, destinations: written only as data --------------------------


def test_hostile_scripts_manifests_and_contents_are_written_only_as_data(rig: Rig) -> None:
    texts = [rig.real(text) for text in HOSTILE]
    created = rig.ask(
        {
            "command": "create",
            "box": BOX,
            "files": [{"content": text, "destination": "/tmp/hostile"} for text in texts],
            "puppet": [{"manifest": text} for text in texts],
            "shell": [*texts, *({"inline": text} for text in texts)],
        }
    )
    assert created["error"] is False, created
    started = rig.ask({"command": "start", "boxID": created["boxID"]})
    assert started["error"] is False, started
    root, spec = rig.project(started["vmID"])
    n = len(texts)
    assets = [
        *(f"assets/{i}" for i in range(n)),
        *(f"assets/{i}/site.pp" for i in range(n, 2 * n)),
        *(f"assets/{i}.sh" for i in range(2 * n, 4 * n)),
    ]
    assert spec["provisioners"] == [
        *({"type": "file", "source": assets[i], "destination": "/tmp/hostile"} for i in range(n)),
        *(
            {"type": "puppet", "manifests_path": f"assets/{i}", "manifest_file": "site.pp"}
            for i in range(n, 2 * n)
        ),
        *({"type": "shell", "path": assets[i]} for i in range(2 * n, 4 * n)),
    ]
    for index, asset in enumerate(assets):
        assert (root / asset).read_bytes() == texts[index % n].encode(), asset
    rig.assert_nothing_ran()

    result, calls = load_template(root)
    assert result.returncode == 0, result.stderr
    expected = ["file"] * n + ["puppet"] * n + ["shell"] * 2 * n
    assert [kind for kind, _ in provisions(calls)] == expected
    rig.assert_nothing_ran()


def test_hostile_destinations_reach_vagrant_as_the_very_same_strings(rig: Rig) -> None:
    texts = [rig.real(text) for text in HOSTILE if text not in LINE_BREAKING]
    created = rig.ask(
        {
            "command": "create",
            "box": BOX,
            "files": [{"content": "x", "destination": text} for text in texts],
        }
    )
    assert created["error"] is False, created
    started = rig.ask({"command": "start", "boxID": created["boxID"]})
    assert started["error"] is False, started
    root, spec = rig.project(started["vmID"])
    assert [item["destination"] for item in spec["provisioners"]] == texts
    rig.assert_nothing_ran()

    result, calls = load_template(root)
    assert result.returncode == 0, result.stderr
    assert provisions(calls) == [
        ("file", {"source": str(root / "assets" / str(i)), "destination": text})
        for i, text in enumerate(texts)
    ]
    rig.assert_nothing_ran()


@pytest.mark.parametrize("text", sorted(LINE_BREAKING))
def test_destinations_with_a_line_break_are_refused_at_create(rig: Rig, text: str) -> None:
    reply = rig.ask(
        {"command": "create", "box": BOX, "files": [{"content": "x", "destination": text}]}
    )
    assert (reply["error"], reply.get("code")) == (True, "INVALID_REQUEST"), reply


@pytest.mark.parametrize(
    "provisioners",
    [
        {"shell": ["echo \ud800"]},
        {"puppet": [{"manifest": "\udfff"}]},
        {"files": [{"content": "\ud800", "destination": "/tmp/x"}]},
    ],
)
def test_lone_surrogates_are_refused_or_written(rig: Rig, provisioners: dict[str, Any]) -> None:
    created = rig.ask({"command": "create", "box": BOX, **provisioners})
    if created["error"]:
        assert created["code"] == "INVALID_REQUEST", created
        return
    started = rig.ask({"command": "start", "boxID": created["boxID"]})
    assert started["error"] is False, started


@pytest.mark.parametrize(
    "definition",
    [
        {"files": [{"content": "x", "destination": "/tmp/a\x00b"}]},
        {"files": [{"content": "a\x00b", "destination": "/tmp/x"}]},
        {"files": [{"source": "sub/ok.txt\x00", "destination": "/tmp/x"}]},
        {"shell": ["echo a\x00b"]},
        {"shell": [{"inline": "\x00"}]},
        {"shell": [{"path": "sub/ok.txt\x00.sh"}]},
        {"puppet": [{"manifest": "\x00"}]},
        {"puppet": [{"path": "\x00"}]},
    ],
)
def test_nul_is_refused_in_every_field(rig: Rig, definition: dict[str, Any]) -> None:
    reply = rig.ask({"command": "create", "box": BOX, **definition})
    assert (reply["error"], reply["code"]) == (True, "INVALID_REQUEST"), reply
    assert rig.ask({"command": "info", "subcommand": "box all"})["boxes"] == []


# -- host paths: confined to VCM_FILES_ROOT ------------------------------------------------------


@pytest.fixture
def escapes(rig: Rig, tmp_path: Path) -> list[str]:
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (rig.files_root / "link-out").symlink_to(secret)
    (rig.files_root / "dir-out").symlink_to(outside)
    (rig.files_root / "sub" / "chain").symlink_to(rig.files_root / "link-out")
    (rig.files_root / "loop").symlink_to(rig.files_root / "loop")
    return [
        "../secret.txt",
        "sub/../../secret.txt",
        "./../secret.txt",
        str(secret),
        "/etc/passwd",
        "/proc/self/environ",
        "//etc/passwd",
        "link-out",
        "sub/chain",
        "dir-out/secret.txt",
        "loop",
        "sub",
        ".",
        "missing.txt",
        "~/.bashrc",
        "$HOME/.bashrc",
        "file:///etc/passwd",
        rig.real("$(touch /CANARY)"),
        "--help",
    ]


def test_host_paths_that_lead_outside_the_files_root_are_refused(
    rig: Rig, escapes: list[str]
) -> None:
    for path in escapes:
        for definition in (
            {"files": [{"source": path, "destination": "/tmp/x"}]},
            {"shell": [{"path": path}]},
            {"puppet": [{"path": path}]},
        ):
            reply = rig.ask({"command": "create", "box": BOX, **definition})
            assert (reply["error"], reply.get("code")) == (True, "INVALID_REQUEST"), (path, reply)
    assert rig.ask({"command": "info", "subcommand": "box all"})["boxes"] == []
    rig.assert_nothing_ran()


def test_an_empty_file_source_is_refused_at_create(rig: Rig) -> None:
    reply = rig.ask(
        {"command": "create", "box": BOX, "files": [{"source": "", "destination": "/tmp/x"}]}
    )
    assert (reply["error"], reply.get("code")) == (True, "INVALID_REQUEST"), reply


def test_hostile_file_names_inside_the_root_are_copied_not_named(rig: Rig) -> None:
    names = ["$(touch canary)", "`touch canary`", "; touch canary", "--force", "#{`touch x`}"]
    for index, name in enumerate(names):
        (rig.files_root / name).write_text(f"payload {index}")
    created = rig.ask(
        {
            "command": "create",
            "box": BOX,
            "files": [
                {"source": name, "destination": f"/tmp/{index}"} for index, name in enumerate(names)
            ],
            "shell": [{"path": names[0]}],
            "puppet": [{"path": names[1]}],
        }
    )
    assert created["error"] is False, created
    started = rig.ask({"command": "start", "boxID": created["boxID"]})
    assert started["error"] is False, started
    root, _ = rig.project(started["vmID"])
    text = (root / MACHINE_FILE).read_text(encoding="utf-8")
    assert not any(name in text for name in names)
    for index in range(len(names)):
        assert (root / "assets" / str(index)).read_text() == f"payload {index}"
    assert not list(Path.cwd().rglob("canary"))
    rig.assert_nothing_ran()


def test_a_source_swapped_for_a_symlink_after_create_is_not_followed(
    rig: Rig, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    (rig.files_root / "a.txt").write_text("harmless")
    created = rig.ask(
        {"command": "create", "box": BOX, "files": [{"source": "a.txt", "destination": "/tmp/a"}]}
    )
    assert created["error"] is False, created
    (rig.files_root / "a.txt").unlink()
    (rig.files_root / "a.txt").symlink_to(secret)
    started = rig.ask({"command": "start", "boxID": created["boxID"]})
    assert (started["error"], started["code"]) == (True, "VAGRANT_ERROR"), started
    assert "outside the files directory" in started["message"]
    leaked = [p for p in rig.machines.rglob("*") if p.is_file() and p.read_bytes() == b"top secret"]
    assert leaked == []
    assert rig.ask({"command": "info", "subcommand": "VM all"})["VMS"] == []


# -- the real template against hand-made hostile machine.json ----------------------------------


def _spec(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "box": BOX,
        "hostname": "web-1.example.com",
        "guest": "debian",
        "network": {"ip": "192.168.35.2", "netmask": "255.255.255.0", "lxc_bridge": "vlxcbr1"},
        "provisioners": [{"type": "shell", "path": "assets/0.sh"}],
    }
    spec.update(changes)
    return spec


def _network(**changes: str) -> dict[str, str]:
    return {"ip": "192.168.35.2", "netmask": "255.255.255.0", "lxc_bridge": "vlxcbr1", **changes}


T = "touch /CANARY"
HOSTILE_SPECS: list[tuple[str, Any]] = [
    ("box with #{}", _spec(box=f"x#{{`{T}`}}")),
    ("box with an option", _spec(box="--provider=virtualbox")),
    ("box as an object", _spec(box={"json_class": "Kernel", "cmd": T})),
    ("hostname with $()", _spec(hostname=f"web-$({T})")),
    ("hostname with a newline", _spec(hostname="web\nsystem('x')")),
    ("guest with ;", _spec(guest=f"debian; {T}")),
    ("guest as a symbol trick", _spec(guest=":debian")),
    ("ip with backticks", _spec(network=_network(ip=f"1.2.3.4`{T}`"))),
    ("ip out of range", _spec(network=_network(ip="999.1.1.1"))),
    ("network address", _spec(network=_network(ip="192.168.35.0"))),
    ("netmask not contiguous", _spec(network=_network(netmask="255.0.255.0"))),
    ("bridge with $()", _spec(network=_network(lxc_bridge=f"$({T})"))),
    ("unknown network key", _spec(network={**_network(), "type": "public_network"})),
    ("provisioner type eval", _spec(provisioners=[{"type": "eval", "path": T}])),
    ("shell path with ..", _spec(provisioners=[{"type": "shell", "path": "assets/../../x.sh"}])),
    ("shell path absolute", _spec(provisioners=[{"type": "shell", "path": "/etc/passwd"}])),
    ("shell path with backticks", _spec(provisioners=[{"type": "shell", "path": f"`{T}`"}])),
    ("shell inline smuggled", _spec(provisioners=[{"type": "shell", "path": "a.sh", "inline": T}])),
    (
        "file source outside",
        _spec(provisioners=[{"type": "file", "source": "../x", "destination": "/x"}]),
    ),
    (
        "file destination newline",
        _spec(provisioners=[{"type": "file", "source": "a", "destination": "/x\ny"}]),
    ),
    (
        "manifest file with ..",
        _spec(
            provisioners=[{"type": "puppet", "manifests_path": "a", "manifest_file": "../site.pp"}]
        ),
    ),
    ("unknown top-level key", _spec(vagrantfile=f"system('{T}')")),
    ("provisioners not a list", _spec(provisioners={"type": "shell"})),
    ("nested too deep", _spec(hostname=[[[[[[[[[[[["x"]]]]]]]]]]]])),
    ("not an object", [T]),
]


@pytest.mark.parametrize(("name", "spec"), HOSTILE_SPECS, ids=[name for name, _ in HOSTILE_SPECS])
def test_the_template_refuses_a_hostile_machine_json(tmp_path: Path, name: str, spec: Any) -> None:
    canary = tmp_path / "canary"
    root = tmp_path / "project"
    (root / "assets").mkdir(parents=True)
    (root / "Vagrantfile").write_bytes(TEMPLATE)
    text = json.dumps(spec).replace("/CANARY", str(canary))
    (root / MACHINE_FILE).write_text(text, encoding="utf-8")
    result, calls = load_template(root)
    assert result.returncode != 0, f"{name}: the template accepted it: {calls}"
    assert f"vcm: {root / MACHINE_FILE}:" in result.stderr, result.stderr
    assert calls == []
    assert not canary.exists()


def test_vagrant_validate_loads_a_hostile_project(rig: Rig) -> None:
    if shutil.which("vagrant") is None or shutil.which("ruby") is None:
        pytest.skip("vagrant is not installed")
    text = rig.real(HOSTILE[4] + HOSTILE[7])
    created = rig.ask(
        {
            "command": "create",
            "box": BOX,
            "files": [{"content": text, "destination": rig.real("/tmp/$(touch /CANARY)")}],
            "puppet": [{"manifest": text}],
            "shell": [text],
        }
    )
    started = rig.ask({"command": "start", "boxID": created["boxID"]})
    root, _ = rig.project(started["vmID"])
    result = subprocess.run(
        ["/usr/bin/vagrant", "validate", "--ignore-provider"],
        cwd=root,
        env={**os.environ, "VAGRANT_CHECKPOINT_DISABLE": "1", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Vagrantfile validated successfully" in result.stdout
    rig.assert_nothing_ran()
