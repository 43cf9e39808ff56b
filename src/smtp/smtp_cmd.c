/* smtp_cmd.c - split an SMTP command line into verb and argument; BDAT arguments. */
#include "smtp.h"

#include <string.h>
#include <strings.h>

#define BDAT_DIGITS_MAX 20

static const char *const verb_names[CMD_NVERBS] = {
    [CMD_UNKNOWN] = "UNKNOWN", [CMD_HELO] = "HELO", [CMD_EHLO] = "EHLO",
    [CMD_MAIL] = "MAIL",       [CMD_RCPT] = "RCPT", [CMD_DATA] = "DATA",
    [CMD_BDAT] = "BDAT",       [CMD_RSET] = "RSET", [CMD_NOOP] = "NOOP",
    [CMD_QUIT] = "QUIT",       [CMD_VRFY] = "VRFY", [CMD_EXPN] = "EXPN",
    [CMD_HELP] = "HELP",       [CMD_STARTTLS] = "STARTTLS", [CMD_AUTH] = "AUTH",
};

const char *smtp_verb_name(enum smtp_verb v)
{
    return (unsigned)v < CMD_NVERBS ? verb_names[v] : "INVALID";
}

/* skip_spaces - advance *i past spaces in line[0..len) */
static void skip_spaces(const char *line, size_t len, size_t *i)
{
    while (*i < len && line[*i] == ' ')
        (*i)++;
}

/* lookup_verb - the verb spelled by the len bytes at s (case-insensitive) */
static enum smtp_verb lookup_verb(const char *s, size_t len)
{
    for (int v = CMD_UNKNOWN + 1; v < CMD_NVERBS; v++) {
        if (strlen(verb_names[v]) == len && strncasecmp(s, verb_names[v], len) == 0)
            return (enum smtp_verb)v;
    }
    return CMD_UNKNOWN;
}

/* has_keyword - line[*i..len) starts with kw (case-insensitive); skip it and any spaces */
static bool has_keyword(const char *line, size_t len, size_t *i, const char *kw)
{
    size_t n = strlen(kw);
    if (len - *i < n || strncasecmp(line + *i, kw, n) != 0)
        return false;
    *i += n;
    skip_spaces(line, len, i);
    return true;
}

void smtp_cmd_split(const char *line, size_t len, struct smtp_cmd *cmd)
{
    size_t i = 0;
    cmd->verb = CMD_UNKNOWN;
    cmd->arg = "";
    cmd->arglen = 0;
    cmd->no_keyword = false;
    while (i < len && line[i] != ' ')
        i++;
    cmd->verb = lookup_verb(line, i);
    if (cmd->verb == CMD_UNKNOWN)
        return;
    skip_spaces(line, len, &i);
    if (cmd->verb == CMD_MAIL)
        cmd->no_keyword = !has_keyword(line, len, &i, "FROM:");
    else if (cmd->verb == CMD_RCPT)
        cmd->no_keyword = !has_keyword(line, len, &i, "TO:");
    if (i < len) {
        cmd->arg = line + i;
        cmd->arglen = len - i;
    }
}

/* parse_digits - 1..maxdigits decimal digits at s[*i] into *v; false on none/too many/overflow */
static bool parse_digits(const char *s, size_t len, size_t *i, size_t maxdigits, uint64_t *v)
{
    size_t start = *i;
    *v = 0;
    for (; *i < len && s[*i] >= '0' && s[*i] <= '9'; (*i)++) {
        uint64_t d = (uint64_t)(s[*i] - '0');
        if (*i - start >= maxdigits || *v > (UINT64_MAX - d) / 10)
            return false;
        *v = *v * 10 + d;
    }
    return *i > start;
}

bool smtp_parse_bdat(const char *arg, size_t len, uint64_t *size, bool *last, struct parse_err *err)
{
    size_t i = 0;
    *last = false;
    if (!parse_digits(arg, len, &i, BDAT_DIGITS_MAX, size) || (i < len && arg[i] != ' '))
        goto bad;
    skip_spaces(arg, len, &i);
    if (len - i >= 4 && strncasecmp(arg + i, "LAST", 4) == 0) {
        *last = true;
        i += 4;
        skip_spaces(arg, len, &i);
    }
    if (i == len)
        return true;
bad:
    err->code = 501;
    err->ecode = "5.5.4";
    err->text = "Syntax: BDAT chunk-size [LAST]";
    return false;
}
