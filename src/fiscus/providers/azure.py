"""Azure OpenAI: `{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=...`."""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import quote

from fiscus.providers.endpoint import Endpoint
from fiscus.providers.messages import Operation

# The latest GA data-plane inference version when this was written; set `api_version` to pin another.
AZURE_API_VERSION = "2024-10-21"


class AzureOpenAIEndpoint(Endpoint):
    """`api-key: <key>`. `base_url` is the resource endpoint (`https://{resource}.openai.azure.com`); the model
    name picks the deployment through `deployments` (model -> deployment), else the deployment is the model
    name. The Responses API lives at `/openai/responses` and takes the model in the body."""

    kind = "azure-openai"
    wire = "openai"
    default_base_url = None
    default_key_env = "AZURE_OPENAI_API_KEY"
    operations: ClassVar[frozenset[str]] = frozenset({"chat.completions", "responses"})
    model_in_body = False

    def url(self, operation: Operation, model: str, stream: bool) -> str:
        self.check(operation)
        version = quote(self.config.api_version or AZURE_API_VERSION, safe="-.")
        root = self.base_url.removesuffix("/openai")
        if operation == "responses":
            return f"{root}/openai/responses?api-version={version}"
        deployment = quote(self.config.deployments.get(model, model), safe="-._")
        return f"{root}/openai/deployments/{deployment}/chat/completions?api-version={version}"

    def auth_headers(self) -> dict[str, str]:
        return {"api-key": self._api_key} if self._api_key else {}
