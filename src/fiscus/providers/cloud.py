"""Models served through the clouds: AWS Bedrock and Google Vertex AI.

Both name the model in the URL and, for Claude, take Anthropic's Messages body without `model` and with their own
`anthropic_version` in the body. Credentials are short-lived tokens sent as `Authorization: Bearer`: a Bedrock API
key (`AWS_BEARER_TOKEN_BEDROCK`) and a Google OAuth access token (`gcloud auth print-access-token`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar
from urllib.parse import quote

import orjson

from fiscus.config import ProviderConfig
from fiscus.errors import ConfigError
from fiscus.providers.bedrock_stream import MEDIA_TYPE as EVENT_STREAM
from fiscus.providers.bedrock_stream import BedrockMessagesStream
from fiscus.providers.endpoint import Endpoint
from fiscus.providers.messages import Operation, UpstreamRequest
from fiscus.providers.translate import StreamTranslation

BEDROCK_ANTHROPIC_VERSION = "bedrock-2023-05-31"
VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"


class _Cloud(Endpoint):
    model_in_body = False
    anthropic_version: ClassVar[str]

    def auth_headers(self) -> dict[str, str]:
        headers = {name.lower(): value for name, value in self.config.headers.items()}
        if self._api_key:
            headers["authorization"] = f"Bearer {self._api_key}"
        return headers

    def body(self, request: UpstreamRequest, model: str) -> bytes:
        """A Messages body loses `model` (it is in the URL) and gains the cloud's `anthropic_version`."""
        if request.operation != "messages":
            return request.body
        try:
            data = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            return request.body
        if not isinstance(data, dict):
            return request.body
        data.pop("model", None)
        data["anthropic_version"] = self.anthropic_version
        return self._messages_body(data)

    def _messages_body(self, data: dict[str, object]) -> bytes:
        return orjson.dumps(data)


class BedrockEndpoint(_Cloud):
    """`https://bedrock-runtime.{region}.amazonaws.com`: Claude's Messages through InvokeModel
    (`/model/{modelId}/invoke`) and InvokeModelWithResponseStream (`/model/{modelId}/invoke-with-response-stream`,
    AWS event-stream frames read as Anthropic's SSE), and Chat Completions through Bedrock's OpenAI-compatible endpoint
    (`/openai/v1/chat/completions`, streamed or not). Model ids are Bedrock's (`anthropic.claude-…-v1:0`, or an
    inference profile such as `us.anthropic.…`)."""

    kind = "bedrock"
    wire = "anthropic"
    default_key_env = "AWS_BEARER_TOKEN_BEDROCK"
    operations: ClassVar[frozenset[str]] = frozenset({"messages", "chat.completions"})
    anthropic_version = BEDROCK_ANTHROPIC_VERSION

    def __init__(self, name: str, config: ProviderConfig, env: Mapping[str, str]) -> None:
        if not config.base_url:
            region = config.region or "us-east-1"
            config = config.model_copy(update={"base_url": f"https://bedrock-runtime.{region}.amazonaws.com"})
        super().__init__(name, config, env)

    def url(self, operation: Operation, model: str, stream: bool) -> str:
        self.check(operation)
        if operation == "chat.completions":
            return f"{self.base_url}/openai/v1/chat/completions"
        # InvokeModelWithResponseStream answers in AWS's binary event-stream framing (see `stream_reader`).
        action = "invoke-with-response-stream" if stream else "invoke"
        return f"{self.base_url}/model/{quote(model, safe='')}/{action}"

    def headers(self, request: UpstreamRequest) -> dict[str, str]:
        out = super().headers(request)
        if request.stream and request.operation == "messages":
            out["accept"] = EVENT_STREAM
        return out

    def stream_reader(self, operation: Operation) -> StreamTranslation | None:
        return BedrockMessagesStream() if operation == "messages" else None

    def _messages_body(self, data: dict[str, object]) -> bytes:
        data.pop("stream", None)  # InvokeModel rejects it: streaming is another action
        return orjson.dumps(data)


class VertexEndpoint(_Cloud):
    """`https://{location}-aiplatform.googleapis.com/v1/projects/{project}/locations/{location}/publishers/...`
    (`https://aiplatform.googleapis.com` for the global location): Gemini's generateContent
    (`publishers/google/models/{model}:generateContent`, `:streamGenerateContent?alt=sse`) and Claude's Messages
    (`publishers/anthropic/models/{model}:rawPredict`, `:streamRawPredict`). `project` is the Google Cloud
    project, `region` the location."""

    kind = "vertex"
    wire = "gemini"
    default_key_env = "VERTEX_ACCESS_TOKEN"
    operations: ClassVar[frozenset[str]] = frozenset({"generate_content", "messages"})
    anthropic_version = VERTEX_ANTHROPIC_VERSION

    def __init__(self, name: str, config: ProviderConfig, env: Mapping[str, str]) -> None:
        if not config.project:
            raise ConfigError(f"providers.{name}: project is required for kind 'vertex' (the Google Cloud project)")
        if not config.base_url:
            location = config.region or "global"
            host = "aiplatform.googleapis.com" if location == "global" else f"{location}-aiplatform.googleapis.com"
            config = config.model_copy(update={"base_url": f"https://{host}/v1"})
        super().__init__(name, config, env)
        self.location = config.region or "global"

    def url(self, operation: Operation, model: str, stream: bool) -> str:
        self.check(operation)
        root = f"{self.base_url}/projects/{quote(self.config.project or '', safe='-')}/locations/{self.location}"
        name = quote(model.removeprefix("models/"), safe="-._@")
        if operation == "messages":
            action = "streamRawPredict" if stream else "rawPredict"
            return f"{root}/publishers/anthropic/models/{name}:{action}"
        if stream:
            return f"{root}/publishers/google/models/{name}:streamGenerateContent?alt=sse"
        return f"{root}/publishers/google/models/{name}:generateContent"
