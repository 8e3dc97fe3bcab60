"""The test suite (a package, so that ``tests/langchain`` is ``tests.langchain`` and never shadows LangChain)."""
