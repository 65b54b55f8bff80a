"""Bad ``instance_info['configdrive']`` values through the deploy interface inside Ironic.

The real Ironic DB test base, the real ``http`` store (files under a served http_root) and
the FakeAgent, as in test_deploy_ironic.py. Each case runs the ``write_image`` deploy step
(where the drive is taken over) or ``validate`` and checks: the error names the node and the
cause, nothing was stored, no record was made and instance_info still holds the user's value
(so a fixed retry starts from what the user gave). Cases are unittest methods generated from
one table, since pytest's parametrize does not apply to unittest classes.
"""

# Selects oslo.service's threading backend before anything imports oslo.messaging.
import ironic.tests.unit  # noqa: F401,I001  (must come first)

import gzip
import json
from collections.abc import Callable
from typing import Any

from unittest import mock

import pytest
import urllib3.util.connection
from ironic.common import exception
from ironic.conductor import task_manager
from oslo_utils import uuidutils

from ironic_configdrive import image, records, source
from ironic_configdrive.image import errors
from tests.conftest import require_tool
from tests.fixtures import http as http_fixture
from tests.functional.bad_input import corpus
from tests.functional.test_deploy_ironic import DeployInsideIronicBase

SIG = "c0ffee5ec2e7c0ffee5ec2e7c0ffee5ec2e7c0ff"  # a temp URL signature: never in errors
MIB = corpus.MIB


def _big_user_data() -> str:
    # Incompressible-looking text: two MiB of distinct base64 lines.
    return "\n".join(corpus.b64(uuidutils.generate_uuid().encode() * 3) for _ in range(17000))


def _big_iso() -> bytes:
    files = {"meta_data": {"files": [{"path": "/big", "encoding": "base64",
                                      "contents": corpus.b64(bytes(2 * MIB))}]}}
    return image.build_image(files, node_uuid=corpus.NODE_UUID)


#: name -> (instance_info['configdrive'], phrase the error must contain, extra config)
INLINE_CASES: dict[str, tuple[Callable[[], Any], str, dict[str, Any]]] = {
    "malformed_base64": (corpus.malformed_base64, "malformed base64 text", {}),
    "text_in_no_encoding": (corpus.garbage_text, "no gzip, ISO9660, FAT or base64 signature",
                            {}),
    "corrupt_gzip": (lambda: corpus.b64(corpus.corrupt_gzip()), "corrupt gzip data", {}),
    "truncated_gzip": (lambda: corpus.b64(corpus.truncated_gzip()),
                       "gzip data is truncated", {}),
    "gzip_bomb": (lambda: corpus.b64(corpus.gzip_bomb()),
                  f"larger than the {corpus.CAP_MIB} MiB limit", {}),
    "bytes_no_filesystem": (lambda: corpus.b64(corpus.not_a_filesystem()),
                            "decodes to neither gzip nor a filesystem image", {}),
    "iso_wrong_label": (lambda: image.pack(corpus.iso_wrong_label()),
                        "volume label is 'WRONG-LABEL'", {}),
    "vfat_missing_label": (lambda: image.pack(corpus.vfat_without_label()),
                           "volume label is None", {}),
    "json_meta_data_not_object": (lambda: {**corpus.DRIVE, "meta_data": ["uuid"]},
                                  "meta_data must be a JSON object, not list", {}),
    "json_uuid_empty": (lambda: {**corpus.DRIVE, "meta_data": {"uuid": ""}},
                        "meta_data.uuid is missing", {}),
    "json_unknown_key": (lambda: {**corpus.DRIVE, "userdata": "typo"},
                         "unknown config drive key(s) ['userdata']", {}),
    "json_user_data_wrong_type": (lambda: {"user_data": 42},
                                  "user_data must be a string, bytes, a dict or a list", {}),
    "json_file_bad_base64": (
        lambda: {**corpus.DRIVE, "meta_data": {"files": [
            {"path": "/etc/x", "encoding": "base64", "contents": "%%%"}]}},
        "meta_data.files[0].contents is not valid base64", {}),
    "json_text_invalid": (lambda: '{"meta_data": {"name": ', "unrecognised config drive data",
                          {}),
    "traversal_in_file_path": (corpus.traversal_drive,
                               "escapes the config drive tree", {}),
    "traversal_in_content_path": (
        lambda: {**corpus.DRIVE, "meta_data": {"files": [
            {"path": "/etc/motd", "content_path": "/content/../../../etc/shadow",
             "contents": "x"}]}},
        "meta_data.files[0].content_path '/content/../../../etc/shadow' escapes the config "
        "drive tree", {}),
    "oversize_json": (lambda: {**corpus.DRIVE, "user_data": _big_user_data()},
                      "larger than the 1 MiB limit", {"max_size": MIB}),
    "oversize_blob": (lambda: image.pack(_big_iso()), "larger than the 1 MiB limit",
                      {"max_size": MIB}),
    "unsupported_scheme": (lambda: f"ftp://127.0.0.1/drive.gz?temp_url_sig={SIG}",
                           "has an unsupported scheme", {}),
}

# The input-hardening review: each of these was a traceback or a drive validate refused.
INLINE_CASES.update({
    "iso_joliet_label_differs": (lambda: image.pack(corpus.iso_joliet_label_differs()),
                                 "but 'WRONG-JOLIET' in the Joliet one", {}),
    "json_user_data_lone_surrogate": (
        lambda: {**corpus.DRIVE, "user_data": corpus.SECRET + "\ud800"},
        "user_data is not valid Unicode text", {}),
    "json_meta_data_too_deep": (lambda: {**corpus.DRIVE, "meta_data": {"x": json.loads(
        "[" * 900 + "]" * 900)}}, "nests arrays and objects deeper than 64 levels", {}),
    "json_public_keys_list": (lambda: {**corpus.DRIVE, "meta_data": {"public_keys": ["k"]}},
                              "meta_data.public_keys must map key names to key strings", {}),
    "json_file_path_root": (lambda: {**corpus.DRIVE, "meta_data": {"files": [
        {"path": "/", "contents": "x"}]}}, "meta_data.files[0].path names a directory", {}),
    "json_text_deep": (lambda: "[" * 100_000 + "]" * 100_000, "the text looks like JSON", {}),
})

#: Cases the product gets wrong today: kept as they should be (see the report of issue 6).
INLINE_CASES["json_uuid_not_string"] = (
    lambda: {**corpus.DRIVE, "meta_data": {"uuid": ["not", "a", "string"]}},
    "uuid must be a string", {})

#: name -> (HTTP status or fault, what the conductor's log says; the user sees ONE_TEXT)
URL_CASES = {
    "url_403": (403, "answered HTTP 403"),
    "url_404": (404, "answered HTTP 404"),
    "url_500": (500, "answered HTTP 500"),
    "url_503": (503, "answered HTTP 503"),
}
#: Every refusal and failure before a 200 answer reads the same (no probe of the network).
ONE_TEXT = ("the conductor does not fetch from that address, or got no config drive from it "
            "(the conductor's log has the cause)")


class _Cases(DeployInsideIronicBase):
    def setUp(self) -> None:
        super().setUp()
        gen = http_fixture.serve()
        self.server = next(gen)
        self.addCleanup(gen.close)

    def _assert_refused(self, value: Any, phrase: str, *,
                        error: type[Exception] = exception.InstanceDeployFailure,
                        call: str = "write_image", **instance_info: Any) -> str:
        node = self._node(value)
        if instance_info:
            node.instance_info = {**node.instance_info, **instance_info}
            node.save()
        with task_manager.acquire(self.context, node.uuid) as task:
            if call == "validate":
                exc = self.assertRaises(error, task.driver.deploy.validate, task)
            else:
                exc = self.assertRaises(error, task.driver.deploy.execute_deploy_step, task,
                                        {"step": "write_image", "priority": 80,
                                         "interface": "deploy", "args": {}})
        text = str(exc)
        self.assertIn(node.uuid, text)
        self.assertIn(phrase, text)
        for secret in (corpus.SECRET, SIG):
            self.assertNotIn(secret, text)
            self.assertNotIn(secret, self.logs.output)
        # Nothing half-written: no stored file, no record, the user's value untouched,
        # and the agent was never asked to write anything.
        self.assertEqual([], self.http_root.stored_files())
        node.refresh()
        self.assertIsNone(records.load(node))
        self.assertEqual(value, node.instance_info["configdrive"])
        self.assertEqual([], self.agent.commands)
        return text


def _inline_test(make: Callable[[], Any], phrase: str,
                 config: dict[str, Any]) -> Callable[[_Cases], None]:
    def test(self: _Cases) -> None:
        if config:
            self.config(group="configdrive", **config)
        text = self._assert_refused(make(), phrase)
        self.assertIn("The config drive is not usable", text)
    return test


def _url_test(status: int, logged: str) -> Callable[[_Cases], None]:
    def test(self: _Cases) -> None:
        self.server.objects["/drive.gz"] = gzip.compress(corpus.iso())
        self.server.fault("/drive.gz", ("status", status))
        text = self._assert_refused(self.server.url("/drive.gz", f"temp_url_sig={SIG}"),
                                    ONE_TEXT)
        self.assertNotIn(str(status), text.replace(str(self.server.port), ""))
        self.assertIn(logged, self.logs.output)
        self.assertIn("could not download the config drive from", text)
        self.assertIn("/drive.gz?***", text)  # where from, with the query masked
        self.assertEqual(1, len(self.server.requests))  # fetched once, no silent retry
    return test


def _install(cls: type, cases: dict[str, tuple[Any, ...]],
             factory: Callable[..., Callable[[_Cases], None]]) -> None:
    for name, case in cases.items():
        test = factory(*case)
        test.__name__ = f"test_{name}"
        setattr(cls, test.__name__, test)


@pytest.fixture(scope="class")
def untrusted_cert(request: pytest.FixtureRequest,
                   tmp_path_factory: pytest.TempPathFactory) -> None:
    """Made before Ironic's test base blocks subprocesses; bound to the unittest class."""
    require_tool("openssl")
    request.cls.tls = corpus.make_self_signed(str(tmp_path_factory.mktemp("untrusted")))


@pytest.mark.usefixtures("untrusted_cert")
class TestBadConfigDriveThroughDeploy(_Cases):
    tls: tuple[str, str]

    def test_unknown_format_option(self) -> None:
        self._assert_refused(corpus.DRIVE, "unknown image format 'udf'",
                             configdrive_format="udf")

    def test_unknown_format_option_fails_validate(self) -> None:
        self._assert_refused(corpus.DRIVE, "configdrive_format 'udf' of node",
                             error=exception.InvalidParameterValue, call="validate",
                             configdrive_format="udf")

    def test_wrong_type_fails_validate(self) -> None:
        self._assert_refused(["not", "a", "drive"], "must be a URL, gzip+base64 text or a "
                             "JSON object, not list", error=exception.InvalidParameterValue,
                             call="validate")

    def test_url_serving_garbage(self) -> None:
        self.server.objects["/drive.gz"] = corpus.not_a_filesystem()
        text = self._assert_refused(self.server.url("/drive.gz", f"temp_url_sig={SIG}"),
                                    "no gzip, ISO9660, FAT or base64 signature")
        self.assertIn("(downloaded from http://127.0.0.1", text)

    def test_url_tls_untrusted_certificate(self) -> None:
        gen = http_fixture.serve(tls=self.tls)
        server = next(gen)
        self.addCleanup(gen.close)
        server.objects["/drive.gz"] = gzip.compress(corpus.iso())
        text = self._assert_refused(server.url("/drive.gz", f"temp_url_sig={SIG}"),
                                    ONE_TEXT)
        self.assertIn(f"from https://127.0.0.1:{server.port}/drive.gz?***", text)
        self.assertIn("CERTIFICATE_VERIFY_FAILED", self.logs.output)

    def test_url_of_the_metadata_service_is_never_connected(self) -> None:
        with mock.patch.object(urllib3.util.connection, "create_connection",
                               side_effect=AssertionError("connected")) as connect:
            text = self._assert_refused(
                f"http://169.254.169.254/latest/meta-data/?temp_url_sig={SIG}", ONE_TEXT)
        connect.assert_not_called()
        self.assertIn("The config drive URL is not usable for node", text)
        self.assertIn("169.254.169.254 is not a global unicast address", self.logs.output)

    def test_url_of_loopback_is_refused_by_the_default_policy(self) -> None:
        self.config(fetch_allowed_networks=[], group="configdrive")
        self.server.objects["/drive.gz"] = gzip.compress(corpus.iso())
        self._assert_refused(self.server.url("/drive.gz", f"temp_url_sig={SIG}"), ONE_TEXT)
        self.assertEqual([], self.server.requests)

    def test_url_with_content_encoding(self) -> None:
        # requests used to undo this silently: a small answer inflating without bound.
        self.server.objects["/drive.gz"] = gzip.compress(gzip.compress(corpus.iso()))
        self.server.fault("/drive.gz", ("content_encoding", "gzip"))
        self._assert_refused(self.server.url("/drive.gz", f"temp_url_sig={SIG}"),
                             "sent the config drive with Content-Encoding: gzip")
        self.assertEqual("identity", self.server.requests[0].accept_encoding)

    def test_url_with_endless_gzip_padding(self) -> None:
        self.server.objects["/drive.gz"] = gzip.compress(corpus.iso())
        self.server.fault("/drive.gz", ("endless", b"\0"))
        self._assert_refused(self.server.url("/drive.gz", f"temp_url_sig={SIG}"),
                             "zero bytes follow the end of the gzip data")


_install(TestBadConfigDriveThroughDeploy, INLINE_CASES, _inline_test)
_install(TestBadConfigDriveThroughDeploy, URL_CASES, _url_test)


# -- source.normalise directly: inputs the deploy path cannot carry (bytes, other types) ----

@pytest.mark.parametrize(("value", "error", "phrase"), [
    pytest.param(corpus.not_a_filesystem(), errors.UnknownFormatError,
                 "no gzip, ISO9660, FAT or base64 signature", id="raw_bytes_no_filesystem"),
    pytest.param(corpus.corrupt_gzip(), errors.InvalidMediaError, "corrupt gzip data",
                 id="raw_corrupt_gzip_bytes"),
    pytest.param("H4sI\u00e9t\u00e9", errors.InvalidMediaError, "non-ASCII characters",
                 id="non_ascii_text"),
    pytest.param(" \n\t", errors.InvalidInputError, "the config drive is empty",
                 id="whitespace_only"),
    pytest.param(42, errors.InvalidInputError, "a config drive must be a URL, gzip+base64 "
                 "text or a JSON object, not int", id="wrong_type"),
])
def test_normalise_refuses(value: Any, error: type[Exception], phrase: str) -> None:
    with pytest.raises(error) as err:
        source.normalise(value, node_uuid=corpus.NODE_UUID)
    assert phrase in err.value.message
    assert corpus.SECRET not in err.value.message


def test_normalise_unknown_format() -> None:
    with pytest.raises(errors.InvalidInputError, match="unknown image format 'udf'"):
        source.normalise(corpus.DRIVE, node_uuid=corpus.NODE_UUID, fmt="udf")


def test_normalise_cap_is_the_callers() -> None:
    with pytest.raises(errors.SizeLimitExceeded, match="larger than the 1 MiB limit"):
        source.normalise(image.pack(_big_iso()), node_uuid=corpus.NODE_UUID, cap=MIB)
