/* acl_text.h - ACL text with $variables: split into segments when the configuration is
 * loaded, expanded (never evaluated further) when an ACL runs.  Private to conf and acl. */
#ifndef TANDEM_ACL_TEXT_H
#define TANDEM_ACL_TEXT_H

#include "acl.h"

/* Compile s ("$var", "${var}", "\$" for a dollar) into t; false with a message in err. */
bool acl_text_compile(struct acl_text *t, const char *s, char *err, size_t errsz);
void acl_text_free(struct acl_text *t);
/* Append t to out with variable values from vals (NULL = empty); control characters in
 * values become '?', so a value can never split a reply or header line. */
void acl_text_expand(const struct acl_text *t, const char *const vals[VAR_NVARS], struct sbuf *out);
const char *acl_var_name(enum acl_var v);

#endif
