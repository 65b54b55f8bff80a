"""``ironic-configdrive write|remove|status``: the agent's disk commands without an agent.

The same code as the IPA extension (:mod:`agent_ext.pipeline`), for rescue mode, image
preparation and benchmarks. ``agent_ext`` is imported inside the handlers so the rest of the
CLI works on a conductor without the agent's dependencies.

Exit codes: 0 success, 1 the operation failed (one line on stderr), 2 usage error or an
unreadable ``--file``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from typing import Any, TextIO

from .common import CommandError

#: Loggers whose warnings say that a download is being retried or resumed (urllib3 says
#: it too, but less clearly and with the URL).
RETRY_LOGGERS = ("agent_ext.fetch",)
PROGRESS_STEP = 8 * 1024 * 1024
MIB = 1024 * 1024


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``write``, ``remove`` and ``status`` subcommands.

    Each sets ``handler`` (``Callable[[argparse.Namespace], int]``, the exit code) as
    default; failures raise :class:`CommandError` (one line on stderr, exit 1; 2 for an
    unreadable ``--file``).
    """
    write = subparsers.add_parser(
        "write", help="stream, verify and write a config drive to a disk",
        description="Write a config drive (gzip+base64, gzip, base64 or raw ISO9660/vfat) "
                    "to a config-2 partition of DEVICE, or to the whole device.")
    write.add_argument("--device", required=True, help="target disk, e.g. /dev/sda")
    source = write.add_mutually_exclusive_group(required=True)
    source.add_argument("--url", help="http(s) URL of the image (e.g. a Swift temp URL)")
    source.add_argument("--file", help="local file holding the image")
    write.add_argument("--key-file", help="file holding the 64-hex-digit key of an encrypted "
                                          "(sealed) drive; a file, so the key never shows "
                                          "in the process list")
    write.add_argument("--sha256", help="expected sha256 of the decoded image")
    write.add_argument("--size", type=int, help="expected size of the decoded image in bytes")
    write.add_argument("--target", choices=("partition", "device"), default="partition",
                       help="a config-2 partition (default) or the whole device")
    write.add_argument("--format", choices=("iso9660", "vfat"), default=None,
                       help="insist on a filesystem (default: keep the image's, vfat on 4Kn "
                            "disks)")
    tls = write.add_mutually_exclusive_group()
    tls.add_argument("--cafile", help="CA bundle to verify the server's certificate")
    tls.add_argument("--insecure", action="store_true",
                     help="do not verify the server's certificate")
    # --client-cert/--client-key, not --certfile/--keyfile: --key-file is the drive's key.
    # The old spellings stay accepted, unlisted, for scripts written against 0.1.
    write.add_argument("--client-cert", "--certfile", dest="client_cert",
                       help="client certificate (PEM) for mutual TLS")
    write.add_argument("--client-key", "--keyfile", dest="client_key",
                       help="client certificate's private key (PEM) for mutual TLS")
    write.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    _add_json(write)
    write.set_defaults(handler=_run_write)

    remove = subparsers.add_parser(
        "remove", help="zero and delete the config-2 partition of a disk",
        description="Zero every block of the config-2 partition of DEVICE and delete its "
                    "entry; succeeds when there is none.")
    remove.add_argument("--device", required=True, help="disk holding the config drive")
    _add_json(remove)
    remove.set_defaults(handler=_run_remove)

    status = subparsers.add_parser(
        "status", help="show the config drive on a disk",
        description="Report whether DEVICE has a config-2 partition, its node, size, label, "
                    "format and sha256.")
    status.add_argument("--device", required=True, help="disk to inspect")
    _add_json(status)
    status.set_defaults(handler=_run_status)


def _add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


class Progress:
    """Progress lines on a stream: every 8 MiB, with a percentage when the size is known."""

    def __init__(self, stream: TextIO, step: int = PROGRESS_STEP) -> None:
        self.stream = stream
        self.step = step
        self._next = step

    def __call__(self, done: int, total: int | None) -> None:
        if done < self._next:
            return
        while self._next <= done:
            self._next += self.step
        if total:
            line = f"written {done // MIB} of {-(-total // MIB)} MiB ({100 * done // total}%)"
        else:
            line = f"written {done // MIB} MiB"
        print(line, file=self.stream, flush=True)


def _report_retries(stream: TextIO) -> None:
    """Show retries and resumes as they happen instead of a silent wait before the error.

    They are the download code's warnings, masked like every log record of the agent (temp
    URL signatures, the http store's secret names).
    """
    from ironic_configdrive.masking import install_record_masking

    install_record_masking()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("warning: %(message)s"))
    for name in RETRY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(getattr(h, "stream", None) is stream for h in logger.handlers):
            logger.addHandler(handler)
        if logger.getEffectiveLevel() > logging.WARNING:
            logger.setLevel(logging.WARNING)


def _guarded(action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    from ironic_configdrive.image.errors import ConfigDriveError

    try:
        return action()
    except ModuleNotFoundError as exc:
        # Installed with the [conductor] extra only: the disk commands are the agent's code.
        raise CommandError(
            f"write, remove and status need the agent's dependencies (module {exc.name!r} is "
            "not installed); install them with: pip install 'ironic-configdrive[agent]'"
        ) from None
    except ConfigDriveError as exc:
        raise CommandError(exc.message) from None
    except Exception as exc:  # keep the one-line promise even for bugs
        raise CommandError(f"unexpected {type(exc).__name__}: {exc}; please report this bug"
                           ) from None


def _emit(result: dict[str, Any], as_json: bool, human: Callable[[dict[str, Any]], str]) -> None:
    if as_json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        print(human(result))


def _run_write(args: argparse.Namespace) -> int:
    if args.file is not None:
        try:
            open(args.file, "rb").close()
        except OSError as exc:
            raise CommandError(f"cannot read config drive file {args.file!r}: {exc.strerror}",
                               2) from None

    def action() -> dict[str, Any]:
        from agent_ext import pipeline
        from agent_ext.fetch import FetchOptions

        verify: bool | str = False if args.insecure else (args.cafile or True)
        cert = None
        if args.client_cert or args.client_key:
            if not (args.client_cert and args.client_key):
                from ironic_configdrive.image.errors import InvalidInputError

                raise InvalidInputError(reason="--client-cert and --client-key go together")
            cert = (args.client_cert, args.client_key)
        progress = None
        if not args.quiet:
            progress = Progress(sys.stderr)
            _report_retries(sys.stderr)
        return pipeline.write_config_drive(
            args.device, url=args.url, file=args.file, sha256=args.sha256, size=args.size,
            target=args.target, image_format=args.format, progress=progress,
            fetch_options=FetchOptions(verify=verify, cert=cert), key=_read_key(args.key_file))

    _emit(_guarded(action), args.json, _human_write)
    return 0


def _read_key(path: str | None) -> bytes | None:
    if path is None:
        return None
    from ironic_configdrive.image import sealing

    try:
        with open(path, encoding="ascii") as handle:
            text = handle.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"cannot read the key file {path!r}: "
                           f"{getattr(exc, 'strerror', None) or 'not ASCII text'}", 2) from None
    return sealing.decode_key(text)


def _run_remove(args: argparse.Namespace) -> int:
    def action() -> dict[str, Any]:
        from agent_ext import pipeline

        return pipeline.remove(args.device)

    _emit(_guarded(action), args.json, _human_remove)
    return 0


def _run_status(args: argparse.Namespace) -> int:
    def action() -> dict[str, Any]:
        from agent_ext import pipeline

        return pipeline.status(args.device)

    _emit(_guarded(action), args.json, _human_status)
    return 0


def _human_write(result: dict[str, Any]) -> str:
    if result.get("target") == "device":
        where = f"the whole device {result.get('device')}"
    else:
        where = (f"{result.get('path')} (partition {result.get('partition_number')} of "
                 f"{result.get('device')}" + (f", {result['action']}" if result.get("action")
                                             else "") + ")")
    lines = [f"config drive written to {where}",
             f"  source:   {result.get('source')} ({result.get('encoding')}, "
             f"{result.get('source_format')})",
             f"  format:   {result.get('format')}",
             f"  size:     {result.get('size')} bytes",
             f"  sha256:   {result.get('sha256')}",
             f"  verified: {'yes' if result.get('verified') else 'no'}"]
    if result.get("rebuilt"):
        lines.append(f"  rebuilt:  {result.get('rebuild_reason')}")
    if result.get("resumes"):
        lines.append(f"  resumed:  {result['resumes']} time(s) after a broken download")
    return "\n".join(lines)


def _human_remove(result: dict[str, Any]) -> str:
    if result.get("message"):
        return str(result["message"])
    if result.get("removed"):
        return (f"removed config drive partition {result.get('path')} "
                f"({result.get('zeroed_bytes')} bytes zeroed)")
    return f"no config drive partition on {result.get('device')}; nothing to remove"


def _human_status(result: dict[str, Any]) -> str:
    if not result.get("present"):
        lines = [f"no config drive on {result.get('device')}"]
    else:
        lines = [
            f"config drive on {result.get('path')} (partition "
            f"{result.get('partition_number')})",
            f"  label:  {result.get('label')}",
            f"  format: {result.get('format')}",
            f"  size:   {result.get('size')} bytes",
            f"  sha256: {result.get('sha256')}",
        ]
    if result.get("note"):
        lines.append(f"  note:   {result['note']}")
    # Every partition of ours, also those holding no drive (remove erases them all).
    for part in result.get("partitions") or []:
        holds = (f"{part.get('format')} labelled {part.get('label')}" if part.get("label")
                 else "no config drive")
        mark = "marked" if part.get("marked") else "not marked"
        lines.append(f"  partition {part.get('number')} ({part.get('path')}, "
                     f"{part.get('size')} bytes, {mark}): {holds}")
    return "\n".join(lines)
