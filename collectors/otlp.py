"""OTLP/HTTP traces → genobs samples (OpenTelemetry GenAI semantic conventions, DESIGN §3).

A span is a GenAI span when it carries ``gen_ai.*`` attributes; it becomes one sample when
it names a model (``gen_ai.request.model`` or ``gen_ai.response.model``). Other spans
(HTTP, database, agent/tool spans without a model) are ignored and counted.

Mapping (current names first, deprecated ones after them):

- request_id: ``genobs.request_id`` attribute, else ``<trace_id>-<span_id>`` (hex), so a
  re-exported span updates its sample instead of duplicating it. A span whose trace_id or
  span_id is empty or all zero (invalid in OTLP) and that has no ``genobs.request_id`` is
  rejected (partial_success, dead_letter): one id for all of them would make each
  overwrite the last
- timestamp: span start; latency_ms: span end − start
- service: resource ``service.name``; region: resource ``cloud.region``
- model: ``gen_ai.request.model`` (else ``gen_ai.response.model``);
  model_version: ``gen_ai.response.model`` (the concrete snapshot; else the request model)
- input_tokens/output_tokens: ``gen_ai.usage.input_tokens``/``output_tokens``,
  deprecated ``gen_ai.usage.prompt_tokens``/``completion_tokens``
- prompt/response: ``gen_ai.input.messages``/``gen_ai.output.messages`` (on the span or on
  a span event), ``gen_ai.system_instructions``; deprecated ``gen_ai.prompt``/
  ``gen_ai.completion`` (attributes, or ``gen_ai.content.prompt``/``.completion`` events),
  and indexed ``gen_ai.prompt.N.content``/``gen_ai.completion.N.content``
- ttft_ms: ``gen_ai.response.time_to_first_chunk`` (seconds)
- context: ``gen_ai.retrieval.documents``
- status: ``error.type`` → "error" (or "timeout" when the type says so) with error_type;
  a span with status ERROR → "error" (error_type from its exception event);
  finish reason ``content_filter`` → "filtered"
- modality: "image" when ``gen_ai.output.type`` is "image"
- attributes: provider (``gen_ai.provider.name``, deprecated ``gen_ai.system``),
  operation, response id, finish reasons, request parameters, trace/span ids
- any ``genobs.<field>`` attribute (span over resource) sets that sample field directly,
  e.g. ``genobs.variant=canary``, ``genobs.tenant``, ``genobs.cost_usd``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from genobs import jsontext
from genobs.records import SAMPLE_FIELD_NAMES

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

_TIMEOUT = re.compile(r"timeout|timed.?out|deadline", re.I)
_OVERRIDE_PREFIX = "genobs."
_MAX_ATTRIBUTE_TEXT = 1024
# An OTLP/JSON body may nest this deep (a span's attributes sit about ten levels down, and
# each nested kvlist adds four); protobuf's parser stops at 100 nested messages.
MAX_JSON_DEPTH = 160


class OtlpDecodeError(ValueError):
    """The body is not an OTLP ExportTraceServiceRequest in the given encoding."""


class InvalidSpan(ValueError):
    """A GenAI span that cannot become a sample (said why)."""


# ----------------------------------------------------------------------------- decoding


def _hex_ids_to_base64(node: Any) -> None:
    """OTLP/JSON writes trace and span ids as hex; protobuf's JSON mapping wants base64."""
    if isinstance(node, dict):
        for key in ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"):
            value = node.get(key)
            if isinstance(value, str) and value and len(value) % 2 == 0:
                try:
                    node[key] = base64.b64encode(bytes.fromhex(value)).decode()
                except ValueError:
                    pass  # already base64 (or invalid: protobuf reports it)
        for value in node.values():
            _hex_ids_to_base64(value)
    elif isinstance(node, list):
        for item in node:
            _hex_ids_to_base64(item)


def decode_request(body: bytes, content_type: str) -> ExportTraceServiceRequest:
    """Parse an OTLP/HTTP trace export body (protobuf or JSON)."""
    request = ExportTraceServiceRequest()
    if content_type == PROTOBUF:
        try:
            request.ParseFromString(body)
        except DecodeError as exc:
            raise OtlpDecodeError(f"body is not a protobuf ExportTraceServiceRequest: {exc}") from None
        return request
    try:
        document = jsontext.loads(body, MAX_JSON_DEPTH)
    except jsontext.TooDeep as exc:
        raise OtlpDecodeError(f"body: {exc}") from None
    except ValueError as exc:
        raise OtlpDecodeError(f"body is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise OtlpDecodeError("body is not an OTLP JSON object (expected {\"resourceSpans\": [...]})")
    _hex_ids_to_base64(document)
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except (json_format.ParseError, binascii.Error, ValueError, TypeError, RecursionError) as exc:
        raise OtlpDecodeError(f"body is not an OTLP ExportTraceServiceRequest: {exc}") from None
    return request


def encode_response(content_type: str, rejected_spans: int = 0, message: str = "") -> bytes:
    response = ExportTraceServiceResponse()
    if rejected_spans or message:
        response.partial_success.CopyFrom(
            ExportTracePartialSuccess(rejected_spans=rejected_spans, error_message=message)
        )
    if content_type == PROTOBUF:
        return response.SerializeToString()
    return json_format.MessageToJson(response, indent=None).encode()


# ----------------------------------------------------------------------------- values


def any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, kind)


def attributes_dict(attributes: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in attributes}


def _message_text(message: Any) -> str:
    """Text of one chat message in any of the shapes GenAI instrumentations write."""
    if message is None:
        return ""
    if isinstance(message, str):
        return message
    if isinstance(message, list):
        return "\n".join(t for t in (_message_text(m) for m in message) if t)
    if not isinstance(message, dict):
        return str(message)
    texts: list[str] = []
    parts = message.get("parts")
    if isinstance(parts, list):
        for part in parts:
            if isinstance(part, dict):
                if part.get("type", "text") == "text":
                    content = part.get("content", part.get("text"))
                    if isinstance(content, str):
                        texts.append(content)
            elif isinstance(part, str):
                texts.append(part)
    content = message.get("content")
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for item in content:
            if isinstance(item, str):
                texts.append(item)
            elif isinstance(item, dict) and isinstance(item.get("text", item.get("content")), str):
                texts.append(item.get("text", item.get("content")))
    elif isinstance(message.get("text"), str):
        texts.append(message["text"])
    if not texts and isinstance(message.get("message"), dict):  # {"index":0,"message":{...}}
        return _message_text(message["message"])
    return "\n".join(texts)


def messages_text(value: Any) -> str | None:
    """gen_ai.input/output.messages (JSON text or structured) → one text.

    One message gives its text; several give "role: text" lines.
    """
    if value is None:
        return None
    if isinstance(value, str):
        stripped = value.strip()
        if stripped[:1] in ("[", "{"):
            try:
                value = jsontext.loads(stripped)
            except ValueError:      # not JSON (or nested too deep to be messages): the text
                return value
        else:
            return value
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        return str(value)
    texts = [(m.get("role") if isinstance(m, dict) else None, _message_text(m)) for m in value]
    texts = [(role, text) for role, text in texts if text]
    if not texts:
        return None
    if len(texts) == 1:
        return texts[0][1]
    return "\n".join(f"{role}: {text}" if role else text for role, text in texts)


def _indexed_messages(attributes: Mapping[str, Any], prefix: str) -> str | None:
    """OpenLLMetry-style gen_ai.prompt.0.role / gen_ai.prompt.0.content attributes."""
    pattern = re.compile(re.escape(prefix) + r"\.(\d+)\.(role|content)$")
    found: dict[int, dict[str, Any]] = {}
    for key, value in attributes.items():
        match = pattern.match(key)
        if match:
            found.setdefault(int(match.group(1)), {})[match.group(2)] = value
    if not found:
        return None
    return messages_text([found[i] for i in sorted(found)])


def _documents(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = jsontext.loads(value)
        except ValueError:
            return [value]
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        return None
    documents: list[str] = []
    for item in value:
        if isinstance(item, str):
            documents.append(item)
        elif isinstance(item, dict):
            for key in ("content", "text", "page_content", "document"):
                if isinstance(item.get(key), str):
                    documents.append(item[key])
                    break
    return documents or None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _nanos_to_rfc3339(nanos: int) -> str:
    seconds, rest = divmod(int(nanos), 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc).replace(microsecond=rest // 1000)
    return moment.isoformat().replace("+00:00", "Z")


def _scalar(value: Any) -> str | int | float | bool | None:
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    if isinstance(value, list):
        value = ",".join(str(v) for v in value)
    text = str(value)
    return text[:_MAX_ATTRIBUTE_TEXT]


# ----------------------------------------------------------------------------- mapping


@dataclass
class TraceMapping:
    samples: list[dict[str, Any]] = field(default_factory=list)
    # GenAI spans rejected before validation: (message naming the span, the span as JSON)
    invalid: list[tuple[str, str]] = field(default_factory=list)
    spans: int = 0
    ignored_non_genai: int = 0
    ignored_no_model: int = 0

    @property
    def ignored(self) -> int:
        return self.ignored_non_genai + self.ignored_no_model


_PASSTHROUGH_ATTRIBUTES = (
    "gen_ai.operation.name",
    "gen_ai.response.id",
    "gen_ai.response.finish_reasons",
    "gen_ai.conversation.id",
    "gen_ai.agent.name",
    "gen_ai.output.type",
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.reasoning.output_tokens",
    "server.address",
)


def _event_attribute(span: Span, names: Iterable[str], key: str) -> Any:
    wanted = set(names)
    for event in span.events:
        if event.name in wanted or not wanted:
            attrs = attributes_dict(event.attributes)
            if key in attrs:
                return attrs[key]
    return None


def _error_type_from_events(span: Span) -> str | None:
    for event in span.events:
        if event.name == "exception":
            attrs = attributes_dict(event.attributes)
            if isinstance(attrs.get("exception.type"), str):
                return attrs["exception.type"]
    return None


def span_to_sample(span: Span, resource: Mapping[str, Any]) -> dict[str, Any] | None:
    """One GenAI span → a sample dict (unvalidated), or None when it names no model."""
    attrs = attributes_dict(span.attributes)
    request_model = attrs.get("gen_ai.request.model")
    response_model = attrs.get("gen_ai.response.model")
    model = request_model or response_model
    if not model:
        return None
    trace_id = span.trace_id.hex()
    span_id = span.span_id.hex()
    if not (any(span.trace_id) and any(span.span_id)) and not (
            attrs.get("genobs.request_id") or resource.get("genobs.request_id")):
        raise InvalidSpan("trace_id or span_id is empty or all zero (invalid in OTLP) and there is no "
                          "genobs.request_id attribute: no request_id can be made for it")
    sample: dict[str, Any] = {
        "request_id": f"{trace_id}-{span_id}",
        "timestamp": _nanos_to_rfc3339(span.start_time_unix_nano),
        "model": str(model),
        "model_version": str(response_model or model),
    }
    if isinstance(resource.get("service.name"), str):
        sample["service"] = resource["service.name"]
    if isinstance(resource.get("cloud.region"), str):
        sample["region"] = resource["cloud.region"]
    if span.end_time_unix_nano >= span.start_time_unix_nano > 0:
        sample["latency_ms"] = (span.end_time_unix_nano - span.start_time_unix_nano) / 1e6

    input_tokens = attrs.get("gen_ai.usage.input_tokens", attrs.get("gen_ai.usage.prompt_tokens"))
    output_tokens = attrs.get("gen_ai.usage.output_tokens", attrs.get("gen_ai.usage.completion_tokens"))
    if input_tokens is not None:
        sample["input_tokens"] = input_tokens
    if output_tokens is not None:
        sample["output_tokens"] = output_tokens
    ttft_s = _number(attrs.get("gen_ai.response.time_to_first_chunk"))
    if ttft_s is not None:
        sample["ttft_ms"] = ttft_s * 1000.0

    prompt = (
        messages_text(attrs.get("gen_ai.input.messages"))
        or messages_text(_event_attribute(span, (), "gen_ai.input.messages"))
        or messages_text(attrs.get("gen_ai.prompt"))
        or messages_text(_event_attribute(span, ("gen_ai.content.prompt",), "gen_ai.prompt"))
        or _indexed_messages(attrs, "gen_ai.prompt")
    )
    system = messages_text(attrs.get("gen_ai.system_instructions"))
    if system and prompt:
        prompt = f"system: {system}\n{prompt}"
    response = (
        messages_text(attrs.get("gen_ai.output.messages"))
        or messages_text(_event_attribute(span, (), "gen_ai.output.messages"))
        or messages_text(attrs.get("gen_ai.completion"))
        or messages_text(_event_attribute(span, ("gen_ai.content.completion",), "gen_ai.completion"))
        or _indexed_messages(attrs, "gen_ai.completion")
    )
    if prompt is not None:
        sample["prompt"] = prompt
    if response is not None:
        sample["response"] = response
    context = _documents(attrs.get("gen_ai.retrieval.documents"))
    if context:
        sample["context"] = context
    if attrs.get("gen_ai.output.type") == "image":
        sample["modality"] = "image"

    finish_reasons = attrs.get("gen_ai.response.finish_reasons")
    error_type = attrs.get("error.type")
    if error_type:
        sample["status"] = "timeout" if _TIMEOUT.search(str(error_type)) else "error"
        sample["error_type"] = str(error_type)
    elif span.status.code == Status.STATUS_CODE_ERROR:
        error_type = _error_type_from_events(span) or "error"
        sample["status"] = "timeout" if _TIMEOUT.search(error_type) else "error"
        sample["error_type"] = error_type
    elif finish_reasons and "content_filter" in (
        finish_reasons if isinstance(finish_reasons, list) else [finish_reasons]
    ):
        sample["status"] = "filtered"

    attributes: dict[str, Any] = {"trace_id": trace_id, "span_id": span_id, "span_name": span.name}
    provider = attrs.get("gen_ai.provider.name", attrs.get("gen_ai.system"))
    if provider is not None:
        attributes["gen_ai.provider.name"] = _scalar(provider)
    for key in _PASSTHROUGH_ATTRIBUTES:
        if key in attrs:
            attributes[key] = _scalar(attrs[key])
    for key, value in attrs.items():
        if key.startswith("gen_ai.request.") and key != "gen_ai.request.model":
            attributes[key] = _scalar(value)
    sample["attributes"] = attributes

    for source in (resource, attrs):
        for key, value in source.items():
            if key.startswith(_OVERRIDE_PREFIX):
                name = key[len(_OVERRIDE_PREFIX):]
                if name in SAMPLE_FIELD_NAMES and name != "attributes":
                    sample[name] = value
    return sample


def is_genai_span(span: Span) -> bool:
    return any(kv.key.startswith("gen_ai.") for kv in span.attributes)


def map_request(request: ExportTraceServiceRequest) -> TraceMapping:
    """Every span of an export request: GenAI model calls become samples."""
    mapping = TraceMapping()
    for resource_spans in request.resource_spans:
        resource = attributes_dict(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                mapping.spans += 1
                if not is_genai_span(span):
                    mapping.ignored_non_genai += 1
                    continue
                try:
                    sample = span_to_sample(span, resource)
                except InvalidSpan as exc:
                    name = span.name[:100]
                    mapping.invalid.append((f"span {mapping.spans} ({name!r}): {exc}",
                                            json_format.MessageToJson(span, indent=None)))
                    continue
                if sample is None:
                    mapping.ignored_no_model += 1
                    continue
                mapping.samples.append(sample)
    return mapping
