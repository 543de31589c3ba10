from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from vcm.domain.allocation import (
    IpPool,
    box_id_for,
    check_definition,
    hostname_for,
    is_dns_name,
    vm_id_for,
)
from vcm.domain.errors import InvalidRequest, PoolExhausted
from vcm.domain.model import Box, BoxDefinition, ShellProvisioner


class TestIds:
    def test_box_id_replaces_every_non_alphanumeric_character(self) -> None:
        assert box_id_for("ubuntu/trusty64", 12) == "ubuntu_trusty64_12"
        assert box_id_for("my-org/deb.12", 3) == "my_org_deb_12_3"

    def test_vm_id_appends_the_number_within_the_box(self) -> None:
        assert vm_id_for("ubuntu_trusty64_12", 1) == "ubuntu_trusty64_12_1"


class TestHostnames:
    def test_dynamic_hostname_is_the_vm_id_made_a_dns_label(self) -> None:
        box = Box("ubuntu_trusty64_12", BoxDefinition("ubuntu/trusty64"))
        assert hostname_for(box, 1, "example.com") == "ubuntu-trusty64-12-1.example.com"

    def test_prefix_hostname_counts_the_vms_of_the_box(self) -> None:
        box = Box("x_1", BoxDefinition("x", hostname="Web"))
        assert hostname_for(box, 7, "lab.test") == "web-7.lab.test"

    def test_long_names_are_cut_to_a_valid_label_keeping_the_number(self) -> None:
        box = Box("a" * 80 + "_1", BoxDefinition("a" * 80))
        name = hostname_for(box, 123, "example.com")
        label = name.split(".")[0]
        assert len(label) == 63
        assert label.endswith("-123")
        assert is_dns_name(name)

    def test_a_box_name_starting_oddly_still_gives_a_valid_label(self) -> None:
        box = Box("_x__1", BoxDefinition("x"))
        assert is_dns_name(hostname_for(box, 1, "example.com"))

    @pytest.mark.parametrize("prefix", ["web_1", "-web", "web-", "a" * 64, "we b", "é", ""])
    def test_invalid_prefixes_are_refused(self, prefix: str) -> None:
        with pytest.raises(InvalidRequest, match="DNS label"):
            check_definition(BoxDefinition("x", hostname=prefix))


class TestBoxNames:
    @pytest.mark.parametrize(
        "name", ["ubuntu/trusty64", "vcm/bookworm-test", "a", "hashicorp/precise64"]
    )
    def test_vagrant_box_names_pass(self, name: str) -> None:
        check_definition(BoxDefinition(name))

    @pytest.mark.parametrize(
        "name",
        [
            "",
            "-rf",
            "--force",
            "/abs",
            "a b",
            "a;b",
            "a\nb",
            "$(x)",
            "a//b",
            "a/b/c",
            "a/",
            "x" * 201,
        ],
    )
    def test_names_vagrant_could_misread_are_refused(self, name: str) -> None:
        with pytest.raises(InvalidRequest, match="box must be"):
            check_definition(BoxDefinition(name))

    def test_nul_anywhere_in_a_definition_is_refused(self) -> None:
        definition = BoxDefinition("x", shell=(ShellProvisioner(inline="echo\x00hi"),))
        with pytest.raises(InvalidRequest, match="NUL"):
            check_definition(definition)


class TestIpPool:
    def test_never_leases_network_broadcast_or_host_side_addresses(self) -> None:
        pool = IpPool.with_host_sides(IPv4Network("10.9.0.0/29"))
        leased: set[IPv4Address] = set()
        while True:
            try:
                leased.add(pool.allocate(leased))
            except PoolExhausted:
                break
        assert leased == {IPv4Address(f"10.9.0.{n}") for n in range(2, 6)}

    def test_takes_the_lowest_free_address(self) -> None:
        pool = IpPool.with_host_sides(IPv4Network("192.168.33.0/24"))
        leased = {IPv4Address("192.168.33.2"), IPv4Address("192.168.33.4")}
        assert pool.allocate(leased) == IPv4Address("192.168.33.3")

    def test_exhaustion_says_which_pool(self) -> None:
        pool = IpPool.with_host_sides(IPv4Network("10.9.0.0/30"))
        with pytest.raises(PoolExhausted, match=r"10\.9\.0\.0/30"):
            pool.allocate(set())
