"""``tinymlaas decode`` / ``tinymlaas encode``: see what a device really sent, or build a payload by hand.

Output of ``decode`` is one JSON object from full leaf paths to values typed by the object model
(opaque as ``{"hex": ...}``, objlnk as ``"3:0"``); link format prints a list of links instead.
Bad hex, bad JSON and malformed payloads exit with code 2 and a one-line ``error: ...``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lwm2m_server.cli.app import CliError, app
from lwm2m_server.protocol.jsonvalues import content_to_json

if TYPE_CHECKING:
    from lwm2m_server.protocol.model import Content, ObjectRegistry, ResourceType, Value
    from lwm2m_server.protocol.paths import LwM2MPath

FORMATS = ("tlv", "senml-json", "senml-cbor", "lwm2m-json", "lwm2m-cbor", "text", "opaque", "cbor", "link")
MAX_INPUT_BYTES = 2 * 1024 * 1024 + 64  # hex of a 1 MiB payload (the decoders' own limit)

FormatOpt = Annotated[str, typer.Option("--format", "-f", help=f"one of {', '.join(FORMATS)} (or a number)")]
PathOpt = Annotated[str, typer.Option("--path", "-p", help="request path, e.g. /3/0, or / for a composite payload")]
ObjectsOpt = Annotated[list[Path] | None, typer.Option("--objects", help="extra DDF directory or file (repeatable)")]


def _registry(objects: list[Path] | None) -> ObjectRegistry:
    from lwm2m_server.protocol.ddf import DDFError, load_many
    from lwm2m_server.protocol.model import ObjectRegistry

    try:
        model = ObjectRegistry.default()
        return model.with_objects(load_many(objects)) if objects else model
    except DDFError as exc:
        raise CliError(f"bad object definition: {exc}") from None


def _request_path(text: str) -> LwM2MPath | None:
    """The request path, or None for the root ``/`` (composite payloads with absolute record names)."""
    return None if text.strip() == "/" else _path(text)


def _path(text: str) -> LwM2MPath:
    from lwm2m_server.protocol.paths import LwM2MPath

    try:
        return LwM2MPath.parse(text)
    except ValueError as exc:
        raise CliError(f"bad path: {exc}") from None


def _codec_name(fmt: str) -> str:
    from lwm2m_server.protocol.codecs import CONTENT_FORMATS, CodecError

    if fmt.isdigit():
        try:
            return CONTENT_FORMATS[int(fmt)].name
        except KeyError:
            raise CliError(f"unsupported content format {fmt}") from None
        except CodecError as exc:  # pragma: no cover
            raise CliError(str(exc)) from None
    if fmt not in {c.name for c in CONTENT_FORMATS.values()}:
        raise CliError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return fmt


def _read_payload(arg: str) -> bytes:
    """``HEX`` (spaces, colons and a ``0x`` prefix allowed) or ``@FILE`` with the raw bytes."""
    if arg.startswith("@"):
        file = Path(arg[1:])
        try:
            with file.open("rb") as fh:
                data = fh.read(MAX_INPUT_BYTES + 1)
        except OSError as exc:
            raise CliError(f"cannot read {file}: {exc.strerror or exc}") from None
        if len(data) > MAX_INPUT_BYTES:
            raise CliError(f"{file} is larger than {MAX_INPUT_BYTES} bytes")
        return data
    if len(arg) > 2 * MAX_INPUT_BYTES:
        raise CliError("hex payload too long")
    text = arg.strip()
    if text[:2].lower() == "0x":
        text = text[2:]
    try:
        return bytes.fromhex(text.replace(":", " "))
    except ValueError:
        raise CliError("payload is not valid hex (or use @FILE for a binary file)") from None


def _value_from_json(rtype: ResourceType | None, raw: object, key: str) -> Value:
    from lwm2m_server.protocol.model import ObjectLink, ResourceType

    if isinstance(raw, dict):
        if set(raw) != {"hex"} or not isinstance(raw["hex"], str):
            raise CliError(f'{key}: an object value must be {{"hex": "..."}}')
        try:
            return bytes.fromhex(raw["hex"])
        except ValueError:
            raise CliError(f"{key}: invalid hex") from None
    if rtype is ResourceType.OBJLNK and isinstance(raw, str):
        try:
            return ObjectLink.parse(raw)
        except ValueError as exc:
            raise CliError(f"{key}: {exc}") from None
    integer_type = rtype in (ResourceType.INTEGER, ResourceType.UNSIGNED, ResourceType.TIME)
    if integer_type and isinstance(raw, float) and math.isfinite(raw) and raw.is_integer():
        return int(raw)
    if rtype is ResourceType.FLOAT and isinstance(raw, int) and not isinstance(raw, bool):
        return float(raw)
    if isinstance(raw, bool | int | float | str):
        return raw
    raise CliError(f"{key}: unsupported JSON value {json.dumps(raw)[:40]}")


def content_from_json(doc: object, model: ObjectRegistry) -> Content:
    """The inverse of :func:`content_to_json`; the codec then checks types against the model."""
    if not isinstance(doc, dict):
        raise CliError('content must be a JSON object like {"/3/0/0": "value"}')
    out: Content = {}
    for key, raw in doc.items():
        path = _path(key)
        out[path] = _value_from_json(model.resource_type(path), raw, key)
    return out


def _links_from_json(doc: object) -> bytes:
    from lwm2m_server.protocol.codecs import encode_links
    from lwm2m_server.protocol.linkformat import Link

    if isinstance(doc, str):
        return doc.encode("utf-8")
    if not isinstance(doc, list):
        raise CliError('link format needs a list like [{"target": "/3/0", "params": {"ver": "1.1"}}]')
    links: list[Link] = []
    for item in doc:
        if not isinstance(item, dict) or not isinstance(item.get("target"), str):
            raise CliError("each link needs a string 'target'")
        params = item.get("params", {})
        if not isinstance(params, dict) or not all(v is None or isinstance(v, str) for v in params.values()):
            raise CliError("link params must map names to strings or null")
        links.append(Link(item["target"], params))
    return encode_links(links)


@app.command("decode")
def decode_cmd(
    payload: Annotated[str, typer.Argument(help="payload as HEX, or @FILE for raw bytes")],
    fmt: FormatOpt,
    path: PathOpt,
    objects: ObjectsOpt = None,
) -> None:
    """Decode a device payload and print it as JSON typed by the object model."""
    from lwm2m_server.protocol.codecs import CodecError, codec_by_name, decode_links, root_codec_for

    name = _codec_name(fmt)
    request = _request_path(path)
    model = _registry(objects)
    data = _read_payload(payload)
    try:
        if name == "link":
            links = decode_links(data)
            typer.echo(json.dumps([{"target": lk.target, "params": dict(lk.params)} for lk in links]))
            return
        codec = codec_by_name(name)
        if request is None:
            content = root_codec_for(codec.content_format).decode_root(data, model)
        else:
            content = codec.decode(request, data, model)
    except CodecError as exc:
        raise CliError(f"cannot decode {name}: {exc}") from None
    typer.echo(json.dumps(content_to_json(content)))


@app.command("encode")
def encode_cmd(
    content: Annotated[str, typer.Argument(help='JSON, e.g. \'{"/3/0/0": "ACME", "/5/0/0": {"hex": "00ff"}}\'')],
    fmt: FormatOpt,
    path: PathOpt,
    objects: ObjectsOpt = None,
) -> None:
    """Encode JSON content (the `decode` output shape) for a request path and print the payload as hex."""
    from lwm2m_server.protocol.codecs import CodecError, codec_by_name, root_codec_for

    name = _codec_name(fmt)
    request = _request_path(path)
    model = _registry(objects)
    try:
        doc = json.loads(content)
    except (ValueError, RecursionError) as exc:
        raise CliError(f"content is not valid JSON: {str(exc)[:80]}") from None
    try:
        if name == "link":
            if request is None:
                raise CliError("link format needs a request path, not /")
            data = _links_from_json(doc)
            codec_by_name("link").encode(request, {request: data.decode("utf-8")}, model)  # validates
        elif request is None:
            data = root_codec_for(codec_by_name(name).content_format).encode_root(content_from_json(doc, model), model)
        else:
            data = codec_by_name(name).encode(request, content_from_json(doc, model), model)
    except CodecError as exc:
        raise CliError(f"cannot encode {name}: {exc}") from None
    typer.echo(data.hex())
