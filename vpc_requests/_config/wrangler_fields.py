"""The field lists of wrangler's configuration that :mod:`vpc_requests._config.wrangler`
checks against, copied from workers-sdk
``packages/workers-utils/src/config/validation.ts`` (commit f830836, 2026-08):
the keys of the normalised ``Environment`` object built by
``normalizeAndValidateEnvironment``, the config-level keys added by
``normalizeAndValidateConfig``, and ``friendlyBindingNames``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["BINDING_KINDS", "ENVIRONMENT_FIELDS", "TOP_LEVEL_FIELDS"]

#: The keys an ``[env.NAME]`` table may hold: ``Object.keys(environment)``.
ENVIRONMENT_FIELDS: frozenset[str] = frozenset("""
    account_id compatibility_date compatibility_flags jsx_factory jsx_fragment tsconfig rules name
    main find_additional_modules preserve_file_names base_dir route routes triggers assets limits
    placement build workers_dev preview_urls vars secrets define durable_objects workflows
    migrations exports kv_namespaces cloudchamber containers send_email queues connect r2_buckets
    d1_databases vectorize ai_search_namespaces ai_search websearch agent_memory hyperdrive services
    analytics_engine_datasets dispatch_namespaces mtls_certificates tail_consumers
    streaming_tail_consumers unsafe browser ai images stream media pipelines secrets_store_secrets
    artifacts unsafe_hello_world flagship worker_loaders ratelimits vpc_services vpc_networks
    version_metadata logfwdr no_bundle minify keep_names first_party_worker logpush
    upload_source_maps observability access cache compliance_region python_modules previews
""".split())

#: The keys the top level may hold: ``[...Object.keys(config), "env", "$schema"]``.
TOP_LEVEL_FIELDS: frozenset[str] = ENVIRONMENT_FIELDS | frozenset("""
    configPath userConfigPath topLevelName definedEnvironments targetEnvironment
    pages_build_output_dir send_metrics dependencies_instrumentation keep_vars addresses
    dev site alias wasm_modules text_blobs data_blobs env $schema
""".split())

# Where validateBindingsHaveUniqueNames finds each kind for the environment
# read: "env" (notInheritable: the environment's own table), "inherited"
# (inheritable: the environment's, else the top level's) or "top" (config
# level only).
_INHERITED = {"assets", "logfwdr"}
_TOP = {"data_blobs", "text_blobs", "wasm_modules"}
_KINDS = (
    ("data_blobs", "Data Blob"), ("durable_objects", "Durable Object"), ("kv_namespaces", "KV Namespace"),
    ("send_email", "Send Email"), ("queues", "Queue"), ("d1_databases", "D1 Database"),
    ("vectorize", "Vectorize Index"), ("ai_search_namespaces", "AI Search Namespace"),
    ("ai_search", "AI Search Instance"), ("websearch", "Web Search"), ("agent_memory", "Agent Memory"),
    ("hyperdrive", "Hyperdrive Config"), ("r2_buckets", "R2 Bucket"), ("logfwdr", "logfwdr"),
    ("services", "Worker"), ("analytics_engine_datasets", "Analytics Engine Dataset"),
    ("text_blobs", "Text Blob"), ("browser", "Browser Run"), ("ai", "AI"), ("images", "Images"),
    ("stream", "Stream"), ("media", "Media"), ("version_metadata", "Worker Version Metadata"),
    ("unsafe", "Unsafe Metadata"), ("vars", "Environment Variable"), ("wasm_modules", "Wasm Module"),
    ("dispatch_namespaces", "Dispatch Namespace"), ("mtls_certificates", "mTLS Certificate"),
    ("workflows", "Workflow"), ("pipelines", "Pipeline"), ("secrets_store_secrets", "Secrets Store Secret"),
    ("artifacts", "Artifacts"), ("ratelimits", "Rate Limit"), ("assets", "Assets"),
    ("unsafe_hello_world", "Hello World"), ("flagship", "Flagship"), ("worker_loaders", "Worker Loader"),
    ("vpc_services", "VPC Service"), ("vpc_networks", "VPC Network"),
)

#: Each binding kind's key -> (wrangler's friendly name, where it is read from).
BINDING_KINDS: Mapping[str, tuple[str, str]] = MappingProxyType({
    key: (name, "top" if key in _TOP else "inherited" if key in _INHERITED else "env")
    for key, name in _KINDS
})
