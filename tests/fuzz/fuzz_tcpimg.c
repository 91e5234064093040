/*
 * fuzz_tcpimg.c - CRIU's images as clonemgr/tcpimg.c reads them (files.img
 * and tcp-stream-INO.img, the seeds are real ones from a dump of redis with a
 * client connected). No input may crash the parsers or make them read past
 * the end; what they accept is within bounds.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clonemgr/cm-int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cm_tcp_sock socks[8];
	struct tcp_end e;
	uint8_t *copy = malloc(size ? size : 1); /* exact size: ASan sees any overread */
	int n;

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	n = cm_tcpimg_files(copy, size, socks, 8);
	if (n != -EBADMSG && (n < 0 || n > 8))
		abort();
	memset(&e, 0, sizeof(e));
	n = cm_tcpimg_stream(copy, size, &e);
	if (n != 0 && n != -EBADMSG)
		abort();
	if (n == 0 && (e.snd_wscale > 14 || e.rcv_wscale > 14))
		abort();
	free(copy);
	return 0;
}
