"""Model and provider names as the providers send them, turned into the names genai-prices looks up.

The catalogue's own matching is tried first with the name exactly as sent (it knows Bedrock's regional
`us.`/`eu.` profiles, which cost more than the global ones, and OpenAI's dated snapshots); only a miss falls back
to the normalised forms below, most specific first.
"""

from __future__ import annotations

import re

# fiscus provider names (and gateway provider kinds) that genai-prices knows under another id.
_CATALOGUE_IDS = {
    "gemini": "google",
    "vertex": "google",
    "google-vertex": "google",
    "azure-openai": "azure",
    "bedrock": "aws",
    "aws-bedrock": "aws",
    "xai": "x-ai",
    "grok": "x-ai",
}

# Bedrock cross-region inference profiles: `us.anthropic.claude-…`, `eu.`, `apac.`, `global.`, ...
_BEDROCK_REGION = re.compile(r"^(?:us|eu|apac|ap|jp|au|ca|us-gov|global)\.(?=[a-z0-9-]+\.)")
# Bedrock's version suffix: `…-v1:0`, `…-v2:0:200k`.
_BEDROCK_VERSION = re.compile(r"-v\d+(?::\d+)+(?::[0-9a-z]+)?$")
# A dated snapshot: `-2025-04-14`, `-20250514`, Mistral's `-2503`, Vertex's `@20250929`, `-0709`.
_DATED = re.compile(r"(?:[-@](?:\d{4}-\d{2}-\d{2}|\d{8}|\d{4})|@[\w.-]+|-latest)$")
# Name prefixes that do not name the model: Gemini's `models/`, Vertex's resource path.
_PREFIXES = re.compile(r"^(?:projects/[^/]+/locations/[^/]+/)?(?:publishers/[^/]+/)?(?:models/)")


def catalogue_provider(provider: str) -> str:
    """genai-prices' id for a fiscus provider name (`bedrock` → `aws`, `xai` → `x-ai`, `gemini` → `google`)."""
    provider = provider.lower()
    return _CATALOGUE_IDS.get(provider, provider)


def lookup_names(model: str) -> list[str]:
    """`model` as sent, then its normalised forms without repeats: prefix dropped, Bedrock region and version
    dropped, dated snapshot dropped (`claude-sonnet-4-5@20250929` → `claude-sonnet-4-5`) or read as the
    family's `-latest` alias (`mistral-small-2503` → `mistral-small-latest`)."""
    names = [model]

    def add(name: str) -> None:
        if name and name not in names:
            names.append(name)

    bare = _PREFIXES.sub("", model.strip())
    add(bare)
    unregioned = _BEDROCK_REGION.sub("", bare)
    add(unregioned)
    for name in (bare, unregioned):
        unversioned = _BEDROCK_VERSION.sub("", name)
        add(unversioned)
        undated = _DATED.sub("", unversioned)
        add(undated)
        if undated != unversioned:
            add(f"{undated}-latest")
    return names
