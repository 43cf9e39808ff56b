/* smtp_in_tls.c - inbound STARTTLS (RFC 3207).  Not available yet. */
#include "smtp_in.h"

bool smtp_starttls_offered(struct smtp_session *s)
{
    (void)s;
    return false;
}

void smtp_starttls(struct smtp_session *s, const struct smtp_cmd *c)
{
    (void)c;
    smtp_reply(s, 454, "4.7.0", "TLS not available");
}
