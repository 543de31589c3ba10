"""The fixed Vagrantfile, run by Ruby with a recording stand-in for Vagrant's config object: what
it sets for each provider from machine.json, and what it refuses. No provider is needed, so the
virtualbox and libvirt settings are checked here too."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from vcm.adapters.resources import provider_settings
from vcm.adapters.vagrant_cli import template_text
from vcm.domain.model import Resources

RECORDER = r"""
require "json"
CALLS = []
class Recorder
  def initialize(path) @path = path end
  def respond_to_missing?(*) true end
  def method_missing(name, *args, **options, &block)
    if name == :provider && block
      block.call(Recorder.new("provider.#{args[0]}"))
      return nil
    end
    CALLS << ["#{@path}.#{name}", args, options] unless args.empty? && options.empty?
    Recorder.new("#{@path}.#{name}")
  end
end
module Vagrant
  def self.configure(_version) yield Recorder.new("config") end
end
load ARGV[0]
puts JSON.generate(CALLS)
"""

pytestmark = pytest.mark.skipif(shutil.which("ruby") is None, reason="ruby is not installed")


def configure(tmp_path: Path, **spec: Any) -> subprocess.CompletedProcess[str]:
    (tmp_path / "Vagrantfile").write_text(template_text())
    (tmp_path / "machine.json").write_text(json.dumps({"box": "vcm/bookworm-test", **spec}))
    (tmp_path / "recorder.rb").write_text(RECORDER)
    return subprocess.run(
        ["ruby", str(tmp_path / "recorder.rb"), str(tmp_path / "Vagrantfile")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def calls(tmp_path: Path, **spec: Any) -> dict[str, list[Any]]:
    done = configure(tmp_path, **spec)
    assert done.returncode == 0, done.stderr
    recorded: dict[str, list[Any]] = {}
    for path, args, _options in json.loads(done.stdout):
        recorded.setdefault(path, []).append(args)
    return recorded


@pytest.mark.parametrize("provider", ["virtualbox", "libvirt"])
def test_vm_providers_get_cpus_and_memory(tmp_path: Path, provider: str) -> None:
    settings = provider_settings(Resources(cpus=2, memory=1024))
    recorded = calls(tmp_path, provider_settings=settings)
    assert recorded[f"provider.{provider}.cpus="] == [[2]]
    assert recorded[f"provider.{provider}.memory="] == [[1024]]


def test_lxc_gets_its_cgroup_limits(tmp_path: Path) -> None:
    settings = provider_settings(Resources(cpus=1, memory=256))
    assert calls(tmp_path, provider_settings=settings)["provider.lxc.customize"] == [
        ["cgroup.cpu.cfs_period_us", "100000"],
        ["cgroup.cpu.cfs_quota_us", "100000"],
        ["cgroup.memory.limit_in_bytes", "256M"],
    ]


def test_without_resources_no_vm_provider_is_declared(tmp_path: Path) -> None:
    recorded = calls(tmp_path)
    assert not [path for path in recorded if "virtualbox" in path or "libvirt" in path]
    assert "provider.lxc.customize" not in recorded
    assert recorded["provider.lxc.backingstore="] == [["dir"]]


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"virtualbox": {"cpus": "2; system('id')"}}, "must be a positive whole number"),
        ({"libvirt": {"memory": -1}}, "must be a positive whole number"),
        ({"virtualbox": {"gpus": 1}}, "unknown key(s) gpus"),
        ({"docker": {"create_args": ["--privileged"]}}, "unknown key(s) docker"),
        ({"lxc": {"customize": [["hook.start", "/bin/sh"]]}}, "must be [key, value]"),
        ({"lxc": {"customize": [["cgroup.memory.limit_in_bytes", "1G; id"]]}}, "positive number"),
    ],
)
def test_anything_else_is_refused(tmp_path: Path, settings: dict[str, Any], problem: str) -> None:
    done = configure(tmp_path, provider_settings=settings)
    assert done.returncode != 0
    assert problem in done.stderr
