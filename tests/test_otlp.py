"""OTLP/HTTP traces with OpenTelemetry GenAI attributes → samples.

The end-to-end tests export real spans with the OpenTelemetry SDK and its OTLP/HTTP
exporter (protobuf, plain and gzip) to a real server on 127.0.0.1.
"""

from __future__ import annotations

import json

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from genobs.collectors import otlp
from genobs.runtime import PlatformHandle


def record_spans() -> list:
    """Spans as an instrumented service would produce them (current and deprecated names)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "chat-api", "cloud.region": "eu-west-1"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("POST /chat"):          # a plain HTTP server span
        with tracer.start_as_current_span("chat gpt-4o") as span:   # current GenAI conventions
            span.set_attribute("gen_ai.operation.name", "chat")
            span.set_attribute("gen_ai.provider.name", "openai")
            span.set_attribute("gen_ai.request.model", "gpt-4o")
            span.set_attribute("gen_ai.request.temperature", 0.2)
            span.set_attribute("gen_ai.response.model", "gpt-4o-2024-08-06")
            span.set_attribute("gen_ai.response.id", "chatcmpl-123")
            span.set_attribute("gen_ai.response.finish_reasons", ["stop"])
            span.set_attribute("gen_ai.usage.input_tokens", 14)
            span.set_attribute("gen_ai.usage.output_tokens", 3)
            span.set_attribute("gen_ai.input.messages", json.dumps(
                [{"role": "user", "parts": [{"type": "text", "content": "What is the capital of France?"}]}]))
            span.set_attribute("gen_ai.output.messages", json.dumps(
                [{"role": "assistant", "parts": [{"type": "text", "content": "Paris."}], "finish_reason": "stop"}]))
            span.set_attribute("genobs.variant", "canary")
        with tracer.start_as_current_span("completion") as span:    # deprecated names
            span.set_attribute("gen_ai.system", "openai")
            span.set_attribute("gen_ai.request.model", "gpt-3.5-turbo")
            span.set_attribute("gen_ai.usage.prompt_tokens", 9)
            span.set_attribute("gen_ai.usage.completion_tokens", 4)
            span.set_attribute("gen_ai.prompt.0.role", "user")
            span.set_attribute("gen_ai.prompt.0.content", "Say hi")
            span.set_attribute("gen_ai.completion.0.content", "Hi!")
        with tracer.start_as_current_span("chat claude") as span:   # a failed call
            span.set_attribute("gen_ai.operation.name", "chat")
            span.set_attribute("gen_ai.request.model", "claude-x")
            span.set_attribute("error.type", "RateLimitError")
            span.set_status(Status(StatusCode.ERROR, "429"))
        with tracer.start_as_current_span("execute_tool search") as span:  # GenAI, but no model call
            span.set_attribute("gen_ai.operation.name", "execute_tool")
            span.set_attribute("gen_ai.tool.name", "search")
    provider.shutdown()
    return list(memory.get_finished_spans())


def samples_by_model(handle: PlatformHandle) -> dict[str, dict]:
    cur = handle.store.execute("SELECT * FROM samples")
    names = [d[0] for d in cur.description]
    return {row[names.index("model")]: dict(zip(names, row)) for row in cur.fetchall()}


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_real_otlp_exporter_spans_land_as_samples(running_server: PlatformHandle, compression: Compression) -> None:
    spans = record_spans()
    exporter = OTLPSpanExporter(endpoint=running_server.url + "/v1/traces", compression=compression, timeout=30)
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    exporter.shutdown()

    samples = samples_by_model(running_server)
    assert set(samples) == {"gpt-4o", "gpt-3.5-turbo", "claude-x"}   # HTTP and tool spans ignored
    chat = samples["gpt-4o"]
    by_name = {s.name: s for s in spans}
    span = by_name["chat gpt-4o"]
    assert chat["request_id"] == f"{span.context.trace_id:032x}-{span.context.span_id:016x}"
    assert chat["service"] == "chat-api" and chat["region"] == "eu-west-1"
    assert chat["model_version"] == "gpt-4o-2024-08-06" and chat["variant"] == "canary"
    assert (chat["input_tokens"], chat["output_tokens"]) == (14, 3)
    assert chat["prompt"] == "What is the capital of France?" and chat["response"] == "Paris."
    assert chat["latency_ms"] == pytest.approx((span.end_time - span.start_time) / 1e6)
    assert chat["status"] == "ok"
    attributes = json.loads(chat["attributes"])
    assert attributes["gen_ai.provider.name"] == "openai" and attributes["gen_ai.response.id"] == "chatcmpl-123"
    assert attributes["gen_ai.request.temperature"] == 0.2

    old = samples["gpt-3.5-turbo"]
    assert (old["input_tokens"], old["output_tokens"]) == (9, 4)
    assert (old["prompt"], old["response"]) == ("Say hi", "Hi!")
    assert json.loads(old["attributes"])["gen_ai.provider.name"] == "openai"

    failed = samples["claude-x"]
    assert (failed["status"], failed["error_type"]) == ("error", "RateLimitError")


def test_reexported_spans_update_instead_of_duplicating(running_server: PlatformHandle) -> None:
    spans = record_spans()
    exporter = OTLPSpanExporter(endpoint=running_server.url + "/v1/traces", timeout=30)
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    assert running_server.store.fetchone("SELECT count(*) FROM samples") == (3,)


def test_ignored_and_accepted_spans_are_counted(running_server: PlatformHandle) -> None:
    request = otlp.ExportTraceServiceRequest()
    spans = record_spans()
    # encode with the exporter's own encoder, post by hand to see the answer
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    body = encode_spans(spans).SerializeToString()
    response = httpx.post(running_server.url + "/v1/traces", content=body,
                          headers={"Content-Type": "application/x-protobuf"}, timeout=30)
    assert response.status_code == 200
    assert response.headers["x-genobs-spans-accepted"] == "3"
    assert response.headers["x-genobs-spans-ignored"] == "2"
    request.ParseFromString(body)
    answer = otlp.ExportTraceServiceResponse()
    answer.ParseFromString(response.content)
    assert answer.partial_success.rejected_spans == 0
    metrics = httpx.get(running_server.url + "/metrics").text
    assert 'genobs_otlp_spans_total{outcome="ignored"} 2.0' in metrics


def otlp_json(trace_id: str, span_id: str, **attributes: object) -> dict:
    def value(v: object) -> dict:
        if isinstance(v, bool):
            return {"boolValue": v}
        if isinstance(v, int):
            return {"intValue": str(v)}
        if isinstance(v, float):
            return {"doubleValue": v}
        return {"stringValue": str(v)}

    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "image-api"}}]},
        "scopeSpans": [{"scope": {"name": "manual"}, "spans": [{
            "traceId": trace_id, "spanId": span_id, "name": "generate image", "kind": 3,
            "startTimeUnixNano": "1736935200000000000", "endTimeUnixNano": "1736935203500000000",
            "attributes": [{"key": k, "value": value(v)} for k, v in attributes.items()],
            "status": {},
        }]}],
    }]}


def test_otlp_json_with_hex_ids(running_server: PlatformHandle) -> None:
    trace_id, span_id = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
    body = otlp_json(trace_id, span_id, **{
        "gen_ai.operation.name": "generate_content", "gen_ai.request.model": "sdxl",
        "gen_ai.output.type": "image", "gen_ai.input.messages": "a red bicycle in the snow",
        "genobs.model_version": "1.0-lightning", "gen_ai.response.time_to_first_chunk": 0.25,
    })
    response = httpx.post(running_server.url + "/v1/traces", json=body, timeout=30)
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    assert "partialSuccess" not in response.json()
    row = running_server.store.fetchone(
        "SELECT request_id, service, modality, prompt, model_version, latency_ms, ttft_ms, timestamp "
        "FROM samples WHERE model = 'sdxl'"
    )
    assert row is not None
    assert row[:7] == (f"{trace_id}-{span_id}", "image-api", "image", "a red bicycle in the snow",
                       "1.0-lightning", 3500.0, 250.0)
    assert row[7].isoformat().startswith("2025-01-15T10:00:00")


def test_rejected_spans_are_reported_as_partial_success(running_server: PlatformHandle) -> None:
    body = otlp_json("5b8efff798038103d269b633813fc60d", "eee19b7ec3c1b175", **{
        "gen_ai.request.model": "m", "gen_ai.usage.input_tokens": -5})
    response = httpx.post(running_server.url + "/v1/traces", json=body, timeout=30)
    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "1" and "input_tokens" in partial["errorMessage"]
    assert running_server.store.fetchone("SELECT count(*) FROM dead_letter") == (1,)


def test_bad_bodies(running_server: PlatformHandle) -> None:
    url = running_server.url + "/v1/traces"
    assert httpx.post(url, content=b"\xff\xff\xff", headers={"Content-Type": "application/x-protobuf"}).status_code == 400
    assert httpx.post(url, content=b"[1, 2]", headers={"Content-Type": "application/json"}).status_code == 400
    assert httpx.post(url, content=b"x", headers={"Content-Type": "text/plain"}).status_code == 415


# ---------------------------------------------------------------- mapping details


def test_message_shapes() -> None:
    assert otlp.messages_text("plain text") == "plain text"
    assert otlp.messages_text(json.dumps([{"role": "user", "content": "hi"}])) == "hi"
    assert otlp.messages_text(json.dumps([
        {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
        {"role": "user", "content": [{"type": "text", "text": "Capital of France?"}]},
    ])) == "system: Be brief.\nuser: Capital of France?"
    assert otlp.messages_text(json.dumps([{"role": "assistant", "parts": [
        {"type": "tool_call", "name": "search"}]}])) is None
    assert otlp.messages_text(json.dumps([{"index": 0, "message": {"role": "assistant", "content": "ok"}}])) == "ok"


def _span(**attributes: object) -> otlp.Span:
    span = otlp.Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="s",
                     start_time_unix_nano=1_736_935_200_000_000_000, end_time_unix_nano=1_736_935_201_000_000_000)
    for key, value in attributes.items():
        kv = span.attributes.add()
        kv.key = key
        if isinstance(value, list):
            for item in value:
                kv.value.array_value.values.add().string_value = item
        elif isinstance(value, int):
            kv.value.int_value = value
        else:
            kv.value.string_value = str(value)
    return span


def test_status_mapping() -> None:
    filtered = otlp.span_to_sample(_span(**{"gen_ai.request.model": "m",
                                            "gen_ai.response.finish_reasons": ["content_filter"]}), {})
    assert filtered is not None and filtered["status"] == "filtered"
    timeout = otlp.span_to_sample(_span(**{"gen_ai.request.model": "m", "error.type": "ReadTimeout"}), {})
    assert timeout is not None and (timeout["status"], timeout["error_type"]) == ("timeout", "ReadTimeout")
    span = _span(**{"gen_ai.request.model": "m"})
    span.status.code = otlp.Status.STATUS_CODE_ERROR
    event = span.events.add()
    event.name = "exception"
    kv = event.attributes.add()
    kv.key, kv.value.string_value = "exception.type", "openai.APIConnectionError"
    errored = otlp.span_to_sample(span, {})
    assert errored is not None and errored["error_type"] == "openai.APIConnectionError"


def test_deprecated_content_events_and_retrieval_documents() -> None:
    span = _span(**{"gen_ai.request.model": "m",
                    "gen_ai.retrieval.documents": json.dumps([{"id": "d1", "content": "Paris is in France."}])})
    for name, key, text in (("gen_ai.content.prompt", "gen_ai.prompt", "Where is Paris?"),
                            ("gen_ai.content.completion", "gen_ai.completion", "In France.")):
        event = span.events.add()
        event.name = name
        kv = event.attributes.add()
        kv.key, kv.value.string_value = key, text
    sample = otlp.span_to_sample(span, {"service.name": "rag"})
    assert sample is not None
    assert (sample["prompt"], sample["response"]) == ("Where is Paris?", "In France.")
    assert sample["context"] == ["Paris is in France."]
    assert sample["latency_ms"] == 1000.0 and sample["timestamp"] == "2025-01-15T10:00:00Z"
