"""The soak test reuses the integration fixtures (broker, topics, registry)."""

from tests.integration.conftest import kafka_bootstrap, registry, topics

__all__ = ["kafka_bootstrap", "registry", "topics"]
