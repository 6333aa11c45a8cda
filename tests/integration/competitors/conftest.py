from tests.integration.competitors.support import site

__all__ = ["site"]
