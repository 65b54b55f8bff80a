"""One masking of URL secrets for the conductor, the agent and the CLI."""

import logging

import pytest

from ironic_configdrive import masking
from ironic_configdrive.masking import (
    ScrubFilter,
    install_record_masking,
    mask_record,
    mask_text,
    mask_url,
    scrub,
    strip_query,
)

HTTP_NAME = ("3690fd63-d536-44f1-be72-bf9462a93a83.64febf3bbfe8464396f8c8d4e77197bf."
             "-Ep766UkW4j-Ao6Ha2Gdsr_k96SLpVItFrw4Tft7TyE")


def test_query_hidden() -> None:
    url = "https://s.example.com:8080/v1/AUTH_a/c/o?temp_url_sig=abc123&temp_url_expires=99"
    assert mask_url(url) == "https://s.example.com:8080/v1/AUTH_a/c/o?***"


def test_credentials_and_fragment_dropped() -> None:
    url = "https://user:pw@swift.example.com:8080/v1/AUTH_x/c/o?temp_url_sig=abc&x=1#frag"
    assert mask_url(url) == "https://swift.example.com:8080/v1/AUTH_x/c/o?***"
    assert mask_url("http://user:pw@h/p#frag") == "http://h/p"


def test_without_query_unchanged_opaque_query_and_ipv6() -> None:
    assert mask_url("http://127.0.0.1:8080/cd/n.iso") == "http://127.0.0.1:8080/cd/n.iso"
    assert mask_url("http://[::1]:80/p?opaque") == "http://[::1]:80/p?***"
    assert mask_url("http://h/p?=secret") == "http://h/p?***"


def test_unparseable() -> None:
    assert mask_url("http://h:notaport/") == "<unparseable URL>"


def test_strip_query_identifies_object_across_resigning() -> None:
    assert strip_query("http://h/o?temp_url_sig=1") == strip_query("http://h/o?temp_url_sig=2")


def test_resigned_urls_mask_alike() -> None:
    # Virtual media detach compares masked forms of the inserted URL.
    assert mask_url("http://h/o?temp_url_sig=1&temp_url_expires=5") == mask_url(
        "http://h/o?temp_url_sig=2&temp_url_expires=9")


def test_scrub_masks_every_url_in_text() -> None:
    text = ("Failed fetching image from URL http://h:1/o?temp_url_sig=SECRET: 404; "
            "retry 'https://x/y?token=SECRET2' later")
    out = scrub(text)
    assert "SECRET" not in out
    assert "http://h:1/o?***" in out and "https://x/y?***" in out
    assert out.endswith("later")


def test_http_store_file_name_secret_is_masked() -> None:
    url = f"http://10.0.0.1:8080/configdrive/{HTTP_NAME}.iso"
    masked = mask_url(url)
    assert "Ep766UkW4j" not in masked
    assert masked == ("http://10.0.0.1:8080/configdrive/3690fd63-d536-44f1-be72-bf9462a93a83."
                      "64febf3bbfe8464396f8c8d4e77197bf.***.iso")
    out = scrub(f"BMC could not fetch {url}: 404")
    assert "Ep766UkW4j" not in out and out.endswith(".***.iso: 404")


def test_record_masking_hides_query_strings_of_other_libraries() -> None:
    record = logging.LogRecord("urllib3.connectionpool", logging.DEBUG, __file__, 1,
                               '%s "GET %s HTTP/1.1" 200', ("h:80", "/o?temp_url_sig=S3"), None)
    mask_record(record)
    assert "S3" not in record.getMessage() and "/o?***" in record.getMessage()


def test_scrub_filter_masks_sushy_style_lines() -> None:
    name = ("0c8bb8b1-cf1b-4a8e-9f3f-7e4b4b7b6a11.d1."
            "oSOrVHk7wi6pn9Ekz6W4ylDWHOXjB846i1K4-LFIShY.iso")
    record = logging.LogRecord("sushy.connector", logging.DEBUG, __file__, 1,
                               "HTTP request: POST %s; body: %s", (
                                   "/redfish/v1/x", {"Image": f"http://h/configdrive/{name}"}),
                               None)
    assert ScrubFilter().filter(record)
    text = record.getMessage()
    assert "oSOrVHk7wi6pn9Ekz6W4ylDWHOXjB846i1K4" not in text
    assert "configdrive/0c8bb8b1-cf1b-4a8e-9f3f-7e4b4b7b6a11.d1.***" in text


def test_mask_text_masks_request_paths_and_store_names_but_not_other_question_marks() -> None:
    sig = "temp_url_sig=S3CR3T&temp_url_expires=9"
    line = f'127.0.0.1:80 "GET /configdrive/{HTTP_NAME}.gz?{sig} HTTP/1.1" 200 5'
    masked = mask_text(line)
    assert "S3CR3T" not in masked and "Ep766UkW4j" not in masked
    assert masked.endswith('64febf3bbfe8464396f8c8d4e77197bf.***.gz?*** HTTP/1.1" 200 5')
    assert mask_text(f"Incremented Retry for (url='/o?{sig}')") == \
        "Incremented Retry for (url='/o?***')"
    assert mask_text(f"with url: /o?{sig} (Caused by X)") == "with url: /o?*** (Caused by X)"
    assert mask_text(f"see https://h:1/o?{sig}.") == "see https://h:1/o?***"
    for plain in ("SELECT a FROM t WHERE b = ? AND c=?", "is it ready?", "/dev/sda4 ok"):
        assert mask_text(plain) == plain


def _record(msg: object, *args: object) -> logging.LogRecord:
    return logging.LogRecord("x", logging.DEBUG, __file__, 1, msg, args or None, None)


def test_mask_record_masks_strings_and_objects_and_keeps_containers() -> None:
    url = f"http://h/configdrive/{HTTP_NAME}.iso?temp_url_sig=S3CR3T"
    error = ValueError(f"Max retries exceeded with url: {url}")
    step = {"step": "update_configdrive", "args": {"url": url}}
    record = _record("%s failed: %r; step %s", url, error, step)
    mask_record(record)
    text = record.getMessage()
    assert "S3CR3T" not in text and "Ep766UkW4j" not in text
    assert "ValueError(" in text  # shown as %r would show it, masked
    # A dict stays a dict, so Ironic's step filter can still mask secret keys in it.
    assert isinstance(record.args, tuple) and isinstance(record.args[2], dict)
    plain = _record("%d bytes from %s", 5, "/dev/sda")
    args = plain.args
    mask_record(plain)
    assert plain.args == args and plain.getMessage() == "5 bytes from /dev/sda"


def test_mask_record_named_arguments() -> None:
    record = _record("GET %(url)s", {"url": "/o?temp_url_sig=S3CR3T"})
    mask_record(record)
    assert record.getMessage() == "GET /o?***"


def test_record_masking_installed_once_for_every_logger(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(masking, "_factory_installed", False)
    monkeypatch.setattr(logging, "_logRecordFactory", logging.LogRecord)
    install_record_masking()
    install_record_masking()
    factory = logging.getLogRecordFactory()
    assert factory is not logging.LogRecord
    install_record_masking()
    assert logging.getLogRecordFactory() is factory
    caplog.set_level(logging.DEBUG)
    # A logger nobody configured, created after the install.
    logging.getLogger("some.library.created.later").debug(
        "GET %s", f"/configdrive/{HTTP_NAME}.gz?temp_url_sig=S3CR3T")
    assert "S3CR3T" not in caplog.text and "Ep766UkW4j" not in caplog.text
    assert ".***.gz?***" in caplog.text
