/*
 * fuzz_window_capture.c - libFuzzer target for the arrivals reader (window/trace.c):
 * pcap, pcapng and text, with the port found by the reader and with a fixed
 * port and a small arrivals cap. Built with clang -fsanitize=fuzzer,address,
 * undefined (tests/fuzz/CMakeLists.txt); ctest runs it for a few seconds,
 * docs/window.md says how to run it longer.
 */
#include <stddef.h>
#include <stdint.h>

#include "window/window.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct window_trace_filter capped = {6379, 64};
	struct window_trace *t = NULL;
	char err[256];

	if (window_trace_parse(data, size, NULL, &t, err, sizeof(err)) == 0) {
		/* Whatever was accepted must be usable as a trace. */
		volatile double r = window_trace_rate(t);
		uint64_t bytes = 0;

		for (uint64_t i = 0; i < t->n; i++)
			bytes += t->size[i];
		if (bytes != t->bytes || t->n == 0 || !(t->gap[0] >= 0) || r < 0)
			__builtin_trap();
		window_trace_free(t);
	}
	if (window_trace_parse(data, size, &capped, &t, err, sizeof(err)) == 0) {
		if (t->n > 64)
			__builtin_trap();
		window_trace_free(t);
	}
	return 0;
}
