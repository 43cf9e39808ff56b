/* gen_spool_corpus.c - write the seed corpus of fuzz_spool with the real spool writer.
 * Not built by make; regenerate with:
 *   make && cc -std=c11 -D_GNU_SOURCE -iquote src -o build/gen_spool_corpus \
 *       tests/fuzz/store/gen_spool_corpus.c build/libtandem.a && build/gen_spool_corpus */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "store/store.h"

#define CORPUS "tests/fuzz/corpus/spool"

/* copy_out - input/ID (and a journal text after the fuzzer's mark) into the corpus */
static void copy_out(const char *spool, const char *id, const char *name, const char *journal)
{
    char path[4096], buf[65536];
    str_fmt(path, sizeof(path), "%s/input/%s", spool, id);
    FILE *in = fopen(path, "rb");
    str_fmt(path, sizeof(path), "%s/%s", CORPUS, name);
    FILE *out = fopen(path, "wb");
    if (in == NULL || out == NULL)
        abort();
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        fwrite(buf, 1, n, out);
    if (journal)
        fprintf(out, "~~journal~~\n%s", journal);
    fclose(in);
    fclose(out);
}

/* seed - commit one message and copy it out */
static void seed(const char *spool, struct envelope *env, const char *content, const char *name,
                 const char *journal)
{
    struct spool_writer *w = spool_create(spool, env);
    if (w == NULL || !spool_write(w, content, strlen(content)) || !spool_commit(w, env, false))
        abort();
    copy_out(spool, env->id, name, journal);
    envelope_free(env);
}

int main(void)
{
    char spool[] = "/tmp/gen-spool-XXXXXX", err[256];
    struct envelope env;
    if (mkdtemp(spool) == NULL || !spool_init_dirs(spool, err, sizeof(err)))
        abort();
    envelope_init(&env);
    seed(spool, &env, "", "minimal", NULL);

    envelope_init(&env);
    env.arrival = 1700000000;
    envelope_set(&env.sender, "alice@example.org");
    envelope_add_rcpt(&env, "bob@example.net", DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY,
                      "rfc822;bob@example.net");
    envelope_add_rcpt(&env, "carol@example.net", 0, NULL);
    envelope_add_rcpt(&env, "dave@example.net", DSN_NOTIFY_NEVER, NULL);
    envelope_set(&env.client_ip, "192.0.2.1");
    env.client_port = 52525;
    envelope_set(&env.helo, "client.example.org");
    envelope_set(&env.protocol, "esmtps");
    envelope_set(&env.tls, "TLS1.3:TLS_AES_256_GCM_SHA384:256");
    envelope_set(&env.envid, "QQ314159");
    env.ret = DSN_RET_HDRS;
    env.body = BODY_8BITMIME;
    env.smtputf8 = true;
    envelope_set(&env.message_id, "<123@client.example.org>");
    seed(spool, &env, "From: alice@example.org\r\nSubject: hi\r\n\r\nHello\r\n.\r\n", "full",
         "d0\nf2\nd1");

    envelope_init(&env);
    env.arrival = 1;
    envelope_set(&env.sender, "");
    envelope_add_rcpt(&env, "a\r\nR5:evil\n@x", 15, "X0:\n");
    envelope_set(&env.helo, "\r\nHELO\x01\x7f\xff");
    seed(spool, &env, "D5:abcde\nZ1:5\nX0:\n\r\n\r\0", "hostile", "f0\n");
    return 0;
}
