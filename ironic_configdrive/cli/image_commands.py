"""``build``, ``inspect`` and ``validate``: the image core from the command line."""

from __future__ import annotations

import argparse
import re
import sys
from importlib import resources
from typing import Final

from ironic_configdrive import image
from ironic_configdrive.image import formats, readers, rules

from .common import STDOUT, CommandError, atomic_output, print_json, read_input

#: The example drive shipped in :mod:`ironic_configdrive.examples`.
EXAMPLE: Final = "configdrive.json"

#: C0 and C1 control characters and DEL, shown escaped.
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _printable(text: object) -> str:
    """Text from an image or the command line, safe to print on any terminal.

    Control characters are escaped (an image must not drive the terminal) and so are lone
    surrogates (from a JSON ``"\\ud800"`` or an undecodable file name), which stdout
    could not encode.
    """
    return _CONTROL.sub(lambda found: ascii(found.group())[1:-1], str(text)).encode(
        "utf-8", "backslashreplace").decode("utf-8")


def _build(args: argparse.Namespace) -> int:
    if args.output == STDOUT and args.json:
        raise CommandError("--json prints a summary on standard output, which '-o -' uses "
                           "for the image; write the image to a file, or drop --json", 2)
    raw = read_input(args.input, "config drive JSON")
    try:
        # The document holds meta_data etc., so it may nest one level more than they may.
        configdrive = rules.loads(raw, args.input, limit=rules.MAX_DRIVE_JSON_DEPTH)
    except image.ConfigDriveError as exc:
        raise CommandError(exc.message, 1) from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise CommandError(f"{args.input} is not valid JSON: {exc}", 2) from None
    warnings: list[str] = []
    try:
        built = image.build_image(configdrive, fmt=args.format, node_uuid=args.node_uuid,
                                  node_name=args.node_name, cloudstack=args.cloudstack,
                                  sector_size=args.sector_size, warnings=warnings)
        payload = image.pack(built).encode("ascii") if args.pack else built
    except image.ConfigDriveError as exc:
        raise CommandError(exc.message, 1) from None
    for text in warnings:
        print(f"warning: {text}", file=sys.stderr)
    with atomic_output(args.output) as handle:
        handle.write(payload)
    if args.json:
        print_json({"output": args.output, "format": args.format, "image_size": len(built),
                    "written": len(payload), "packed": args.pack, "warnings": warnings})
    else:
        what = "gzip+base64 text of a " if args.pack else ""
        where = "standard output" if args.output == STDOUT else _printable(args.output)
        # With the image on stdout the summary goes to stderr, out of the pipe's way.
        print(f"wrote {where}: {what}{args.format} config drive, "
              f"{len(built)} bytes ({len(payload)} written)",
              file=sys.stderr if args.output == STDOUT else sys.stdout)
    return 0


def _human_report(report: image.Report) -> str:
    lines = [
        f"format:     {report.format or 'unknown'}"
        + (f" (received as {report.encoding})" if report.encoding else ""),
        f"label:      {report.label or '-'}",
        f"size:       {report.size} bytes",
        f"uuid:       {report.uuid or '-'}",
        f"hostname:   {report.hostname or '-'}",
        f"openstack:  {', '.join(report.openstack_versions) or '-'}",
        f"cloud-init reads: {report.cloud_init_version or '-'}",
        f"ec2:        {', '.join(report.ec2_versions) or '-'}",
        f"files:      {len(report.files)}",
    ]
    lines += [f"  {size:>10}  {path}" for path, size in report.files.items()]
    lines.append("readers:")
    lines += [f"  {name:<15} {'reads it' if not why else 'cannot: ' + '; '.join(why)}"
              for name, why in report.readers.items()]
    lines += [f"warning: {text}" for text in report.warnings]
    lines.append("valid" if report.valid else f"INVALID: {len(report.problems)} problem(s)")
    return "\n".join(_printable(line) for line in lines)


def _inspect(args: argparse.Namespace) -> int:
    """Show what the image holds on stdout, its problems once on stderr; exit 1 if any."""
    report = image.inspect(read_input(args.image, "image"))
    if args.json:
        print_json(report.as_dict())
    else:
        print(_human_report(report))
        for text in report.problems:
            print(f"problem: {_printable(text)}", file=sys.stderr)
    return 0 if report.valid else 1


def _validate(args: argparse.Namespace) -> int:
    """Judge the image for the selected readers (all by default); exit 1 if one fails."""
    selected = list(dict.fromkeys(args.reader or readers.READERS))
    report = image.inspect(read_input(args.image, "image"))
    verdicts = {name: report.readers[name] for name in selected}
    valid = not any(verdicts.values())
    warnings = report.warnings + [f"{text} (no known reader reads it)"
                                  for text in report.unread]
    if args.json:
        print_json({"valid": valid, "readers": {
            name: {"reads": not why, "problems": why} for name, why in verdicts.items()},
            "problems": report.problems, "warnings": warnings})
        return 0 if valid else 1
    for name, why in verdicts.items():
        for text in why:
            print(f"problem: {name}: {_printable(text)}", file=sys.stderr)
    for text in warnings:
        print(f"warning: {_printable(text)}", file=sys.stderr)
    if valid:
        print(f"{_printable(args.image)}: valid {report.format} config drive for "
              f"{', '.join(selected)}")
    else:
        failing = [name for name, why in verdicts.items() if why]
        reading = [name for name, why in verdicts.items() if not why]
        print(f"{_printable(args.image)}: {', '.join(failing)} cannot use it"
              + (f"; {', '.join(reading)} can" if reading else ""), file=sys.stderr)
    return 0 if valid else 1


def _example(args: argparse.Namespace) -> int:
    text = resources.files("ironic_configdrive.examples").joinpath(EXAMPLE).read_bytes()
    with atomic_output(args.output, mode=0o644) as handle:
        handle.write(text)
    if args.output != STDOUT:
        print(f"wrote {_printable(args.output)}: edit it, then: ironic-configdrive build "
              f"{_printable(args.output)} -o configdrive.iso", file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    example = subparsers.add_parser(
        "example", help="print an example of Ironic's JSON form of a config drive",
        description="Print (or write) an example config drive in Ironic's JSON form: "
        "meta_data with an SSH key and a file, cloud-config user_data, network_data and "
        "vendor_data. A starting point for 'build' and for 'baremetal node deploy "
        "--config-drive'.")
    example.add_argument("-o", "--output", default=STDOUT, metavar="OUT",
                         help="file to write (default: standard output)")
    example.set_defaults(handler=_example)

    build = subparsers.add_parser(
        "build", help="build a config drive image from Ironic's JSON form",
        description="Build a config drive from a JSON file holding "
        "{meta_data, user_data, network_data, vendor_data} ('-' reads stdin).")
    build.add_argument("input", metavar="INPUT.json")
    build.add_argument("-o", "--output", required=True, metavar="OUT",
                       help="file to write (mode 0600, replaced only on success); '-' "
                            "writes to standard output")
    build.add_argument("--format", choices=formats.FORMATS, default=formats.ISO9660,
                       help="filesystem of the image (default: %(default)s; vfat for disks "
                            "with 4096-byte sectors, see --sector-size)")
    build.add_argument("--pack", action="store_true",
                       help="write gzip+base64 text, the form Ironic's API takes")
    build.add_argument("--node-uuid", help="default for meta_data.uuid")
    build.add_argument("--node-name", help="default for meta_data.name and hostname")
    build.add_argument("--cloudstack", action="store_true", help="add the CloudStack layout")
    build.add_argument("--sector-size", type=int, choices=(512, 4096), default=512,
                       help="vfat logical sector size (4096 for 4Kn disks)")
    build.add_argument("--json", action="store_true", help="machine-readable summary")
    build.set_defaults(handler=_build)

    for name, handler, text in (
            ("inspect", _inspect, "describe a config drive image in any accepted encoding, "
             "with what each known reader thinks of it"),
            ("validate", _validate, "check an image against what its readers need (every "
             "known reader unless --reader names some); exit 0 valid, 1 problems found, "
             "2 unreadable")):
        sub = subparsers.add_parser(name, help=text, description=text)
        sub.add_argument("image", metavar="IMAGE",
                         help="raw ISO9660/FAT, gzip, or base64 text of either ('-': stdin)")
        sub.add_argument("--json", action="store_true")
        if name == "validate":
            sub.add_argument(
                "--reader", action="append", choices=readers.READERS, metavar="READER",
                help="a reader the drive must work for; repeat for several (default: all of "
                     "them). " + "; ".join(f"{profile.name}: {profile.description}"
                                           for profile in readers.profiles()))
        sub.set_defaults(handler=handler)
