# tandem - build, unit tests, fuzz targets.  `make help` lists the targets.
CC      ?= cc
PKGS    := libevent_openssl libevent libunbound lmdb openssl libcurl jansson
CFLAGS  ?= -O2 -g
override CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wformat=2 -Wno-format-nonliteral -fno-strict-aliasing \
           -iquote src $(shell pkg-config --cflags $(PKGS))
override LDLIBS += $(shell pkg-config --libs $(PKGS)) -lresolv -lm
B       ?= build

SRC     := $(filter-out src/cli/main.c,$(wildcard src/*/*.c))
HDR     := $(wildcard src/*/*.h)
OBJ     := $(SRC:src/%.c=$(B)/obj/%.o)
UNIT    := $(patsubst tests/unit/%.c,$(B)/unit/%,$(wildcard tests/unit/*/test_*.c))
FUZZ    := $(addprefix $(B)/fuzz/,$(basename $(notdir $(wildcard tests/fuzz/*/fuzz_*.c))))

.PHONY: all unit fuzz test clean help asan asan-unit asan-drivers drivers install man bench-lookups
all: $(B)/tandem

$(B)/obj/%.o: src/%.c $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(B)/libtandem.a: $(OBJ)
	rm -f $@ && ar rcs $@ $^

$(B)/tandem: $(B)/obj/cli/main.o $(B)/libtandem.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(B)/unit/%: tests/unit/%.c $(B)/libtandem.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -iquote tests/unit -o $@ $< $(B)/libtandem.a $(LDLIBS) -lcmocka

unit: $(UNIT)
	@set -e; for t in $(UNIT); do echo "== $$t"; $$t; done

# Drivers for the outbound integration tests (tests/outbound/test_*.py run them).
DRIVERS := $(patsubst tests/outbound/%.c,$(B)/drivers/%,$(wildcard tests/outbound/*.c))
$(B)/drivers/%: tests/outbound/%.c $(B)/libtandem.a | $(B)/drivers
	$(CC) $(CFLAGS) -o $@ $< $(B)/libtandem.a $(LDLIBS)

drivers: $(DRIVERS)

# bench/lookups.c: a lookup in a list of ten against one of a million (bench/README.md).
$(B)/bench-lookups: bench/lookups.c $(B)/libtandem.a
	$(CC) $(CFLAGS) -o $@ $< $(B)/libtandem.a $(LDLIBS)

bench-lookups: $(B)/bench-lookups
	$(B)/bench-lookups $(BENCH_LOOKUPS_ARGS)

# libFuzzer targets: clang, ASan+UBSan, all of src/ but main.c linked in.  src/ is compiled
# once into a library with the fuzzer's coverage instrumentation; each target links it.
FUZZSAN   := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZFLAGS := -g -O1 -std=c11 -D_GNU_SOURCE -iquote src $(FUZZSAN) \
             $(shell pkg-config --cflags $(PKGS))
FUZZOBJ   := $(SRC:src/%.c=$(B)/fuzz/obj/%.o)
$(B)/fuzz/obj/%.o: src/%.c $(HDR)
	@mkdir -p $(dir $@)
	clang $(FUZZFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<
$(B)/fuzz/libtandem.a: $(FUZZOBJ)
	rm -f $@ && ar rcs $@ $^
vpath fuzz_%.c $(sort $(dir $(wildcard tests/fuzz/*/fuzz_*.c)))
$(B)/fuzz/fuzz_%: fuzz_%.c $(B)/fuzz/libtandem.a | $(B)/fuzz
	clang $(FUZZFLAGS) -fsanitize=fuzzer -o $@ $< $(B)/fuzz/libtandem.a $(LDLIBS)

fuzz: $(FUZZ)

$(B)/fuzz $(B)/drivers:
	mkdir -p $@

# Sanitizer build of the daemon and unit tests into build/asan (ASan + UBSan, clang).
# Scenario tests against it: TANDEM_BIN=build/asan/tandem (scripts/test does both).
# TANDEM_LEAK_CHECK: workers and the scheduler end with exit(), so LeakSanitizer checks them.
ASAN_CFLAGS := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer \
               -DTANDEM_LEAK_CHECK
asan:
	$(MAKE) B=build/asan CC=clang CFLAGS="$(ASAN_CFLAGS)" all $(patsubst $(B)/%,build/asan/%,$(UNIT))

# The outbound integration-test drivers with the same sanitizers, into build/asan/drivers
# (tests/outbound against them: TANDEM_BUILD=build/asan; scripts/test does both).
asan-drivers: asan
	$(MAKE) B=build/asan CC=clang CFLAGS="$(ASAN_CFLAGS)" drivers

# The unit tests under the sanitizers, leaks included; any report fails the run.
asan-unit: asan
	@set -e; for t in $(patsubst $(B)/%,build/asan/%,$(UNIT)); do echo "== $$t"; \
	  ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=1:$${ASAN_OPTIONS:-} \
	  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:$${UBSAN_OPTIONS:-} $$t; done

# Installation (doc/daemon.md lists exactly what is installed).
PREFIX     ?= /usr/local
SYSCONFDIR ?= /etc
SYSTEMDDIR ?= $(PREFIX)/lib/systemd/system
DESTDIR    ?=
INSTALLED_CONF_SED := -e 's|^spool_directory = .*|spool_directory = /var/lib/tandem|' \
	-e 's|^log_directory = .*|log_directory = /var/log/tandem|' \
	-e 's|^\# user = tandem$$|user = tandem|'

MAN := $(B)/man/tandem.8 $(B)/man/tandem.conf.5
$(MAN) &: doc/config.md doc/daemon.md scripts/gen-man src/core/core.h
	scripts/gen-man $(B)/man

install: all $(MAN)
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/share/man/man8 \
	  $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(SYSTEMDDIR) \
	  $(DESTDIR)$(SYSCONFDIR)/logrotate.d $(DESTDIR)$(SYSCONFDIR)/tandem
	install -m 0755 $(B)/tandem $(DESTDIR)$(PREFIX)/sbin/tandem
	install -m 0644 $(B)/man/tandem.8 $(DESTDIR)$(PREFIX)/share/man/man8/tandem.8
	install -m 0644 $(B)/man/tandem.conf.5 $(DESTDIR)$(PREFIX)/share/man/man5/tandem.conf.5
	sed -e 's|@SBINDIR@|$(PREFIX)/sbin|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' etc/tandem.service \
	  > $(DESTDIR)$(SYSTEMDDIR)/tandem.service && chmod 0644 $(DESTDIR)$(SYSTEMDDIR)/tandem.service
	install -m 0644 etc/tandem.logrotate $(DESTDIR)$(SYSCONFDIR)/logrotate.d/tandem
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/tandem/tandem.conf ]; then \
	  echo "keeping $(DESTDIR)$(SYSCONFDIR)/tandem/tandem.conf"; \
	else \
	  sed $(INSTALLED_CONF_SED) etc/tandem.conf > $(DESTDIR)$(SYSCONFDIR)/tandem/tandem.conf && \
	  chmod 0644 $(DESTDIR)$(SYSCONFDIR)/tandem/tandem.conf; \
	fi

# The manual pages are generated from doc/config.md and doc/daemon.md into $(B)/man.
man: $(MAN)

clean:
	rm -rf $(B)/obj $(B)/unit $(B)/fuzz $(B)/drivers $(B)/man $(B)/tandem $(B)/libtandem.a build/asan \
	       $(B)/bench-lookups

help:
	@echo "make          build build/tandem"
	@echo "make unit     build and run the cmocka unit tests"
	@echo "make fuzz     build the libFuzzer targets into build/fuzz"
	@echo "make drivers  build the outbound integration-test drivers into build/drivers"
	@echo "make bench-lookups  time a lookup in a list of 10 and of 1,000,000 (bench/lookups.c)"
	@echo "make asan     ASan+UBSan build into build/asan"
	@echo "make asan-unit  build it and run the unit tests under the sanitizers"
	@echo "make asan-drivers  the outbound test drivers with ASan+UBSan into build/asan/drivers"
	@echo "make install  install (PREFIX=/usr/local SYSCONFDIR=/etc DESTDIR=): doc/daemon.md"
	@echo "make man      build/man/tandem.8 and tandem.conf.5 from doc/config.md and doc/daemon.md"
