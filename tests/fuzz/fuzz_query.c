/* libFuzzer harness for kiln_query_parse: any byte string as a query. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every decoded string must lie inside the store: the pointers are only
 * stable if the store never moved while parsing. */
static void check_inside(const struct kiln_query *q, const char *s)
{
	if (s < q->store.data || s + strlen(s) >= q->store.data + q->store.cap)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct kiln_query q; /* reused, as a worker reuses it */
	char *qs = malloc(size + 1);
	int i, rc;

	if (qs == NULL)
		return 0;
	memcpy(qs, data, size);
	qs[size] = '\0';
	rc = kiln_query_parse(&q, qs);
	if (rc == 0) {
		if (q.n < 0 || q.n > KILN_QUERY_MAX_PARAMS || strlen(qs) > KILN_QUERY_MAX_LEN)
			abort();
		for (i = 0; i < q.n; i++) {
			check_inside(&q, q.p[i].name);
			check_inside(&q, q.p[i].value);
			if (kiln_query_get(&q, q.p[i].name) == NULL)
				abort();
		}
	} else if (rc != -1 || q.n != 0) {
		abort();
	}
	free(qs);
	return 0;
}
