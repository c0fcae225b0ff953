/* The bare libfcgi responder kiln's request path is measured against: the
 * same response bytes as /health/live, nothing else. */
#include <fcgiapp.h>

int main(void)
{
	static const char resp[] = "Status: 200 OK\r\nContent-Type: application/health+json\r\n"
	                           "Cache-Control: no-store\r\nContent-Length: 35\r\n\r\n"
	                           "{\"status\":\"pass\",\"version\":\"0.1.0\"}";
	FCGX_Request req;

	FCGX_Init();
	FCGX_InitRequest(&req, 0, 0);
	while (FCGX_Accept_r(&req) >= 0) {
		FCGX_PutStr(resp, sizeof(resp) - 1, req.out);
		FCGX_Finish_r(&req);
	}
	return 0;
}
