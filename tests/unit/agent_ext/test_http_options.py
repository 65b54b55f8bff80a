"""FetchOptions: IPA's settings taken over, the wire cap's default."""

from __future__ import annotations

from agent_ext.http_options import WIRE_CAP, FetchOptions
from ironic_configdrive.image.formats import MAX_IMAGE_SIZE


def test_options_from_ipa_config() -> None:
    class Conf:
        insecure = False
        cafile = "/ca.pem"
        certfile = "/c.pem"
        keyfile = "/k.pem"
        image_download_connection_timeout = 7
        image_download_connection_retries = 3
        image_download_connection_retry_interval = 4

    options = FetchOptions.from_ipa_config(Conf(), no_proxy="127.0.0.1")
    assert options.verify == "/ca.pem" and options.cert == ("/c.pem", "/k.pem")
    assert (options.connect_timeout, options.retries, options.backoff_max) == (7.0, 3, 4.0)
    assert options.no_proxy == "127.0.0.1"
    Conf.insecure = True
    assert FetchOptions.from_ipa_config(Conf()).verify is False


def test_wire_cap_defaults_to_base64_of_the_decoded_cap_plus_slack() -> None:
    assert MAX_IMAGE_SIZE * 4 // 3 < WIRE_CAP <= MAX_IMAGE_SIZE * 3 // 2
    assert FetchOptions().max_wire_bytes == WIRE_CAP
