"""Fakes shipped beside the ports they stand in for (like httpx's ``MockTransport``): used by
the tests, the benchmarks and ``turbobot worker --fake-latency-ms``. Nothing here is wired into
a real bot."""
