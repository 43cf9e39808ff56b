# tandem - build, unit tests, fuzz targets.  `make help` lists the targets.
CC      ?= cc
PKGS    := libevent_openssl libevent libunbound lmdb openssl
CFLAGS  ?= -O2 -g
override CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wformat=2 -Wno-format-nonliteral -fno-strict-aliasing \
           -iquote src $(shell pkg-config --cflags $(PKGS))
override LDLIBS += $(shell pkg-config --libs $(PKGS)) -lresolv
B       ?= build

SRC     := $(filter-out src/main.c,$(wildcard src/*.c))
OBJ     := $(SRC:src/%.c=$(B)/obj/%.o)
UNIT    := $(patsubst tests/unit/%.c,$(B)/unit/%,$(wildcard tests/unit/test_*.c))
FUZZ    := $(patsubst tests/fuzz/%.c,$(B)/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))

.PHONY: all unit fuzz test clean help asan drivers
all: $(B)/tandem

$(B)/obj/%.o: src/%.c $(wildcard src/*.h) | $(B)/obj
	$(CC) $(CFLAGS) -c -o $@ $<

$(B)/libtandem.a: $(OBJ)
	rm -f $@ && ar rcs $@ $^

$(B)/tandem: $(B)/obj/main.o $(B)/libtandem.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(B)/unit/%: tests/unit/%.c $(B)/libtandem.a | $(B)/unit
	$(CC) $(CFLAGS) -o $@ $< $(B)/libtandem.a $(LDLIBS) -lcmocka

unit: $(UNIT)
	@set -e; for t in $(UNIT); do echo "== $$t"; $$t; done

# Drivers for the outbound integration tests (tests/outbound/test_*.py run them).
DRIVERS := $(patsubst tests/outbound/%.c,$(B)/drivers/%,$(wildcard tests/outbound/*.c))
$(B)/drivers/%: tests/outbound/%.c $(B)/libtandem.a | $(B)/drivers
	$(CC) $(CFLAGS) -o $@ $< $(B)/libtandem.a $(LDLIBS)

drivers: $(DRIVERS)

# libFuzzer targets: clang, ASan+UBSan, all of src/ but main.c compiled in.
FUZZFLAGS := -g -O1 -std=c11 -D_GNU_SOURCE -iquote src -fsanitize=fuzzer,address,undefined \
             -fno-sanitize-recover=undefined $(shell pkg-config --cflags $(PKGS))
$(B)/fuzz/%: tests/fuzz/%.c $(SRC) $(wildcard src/*.h) | $(B)/fuzz
	clang $(FUZZFLAGS) -o $@ $< $(SRC) $(LDLIBS)

fuzz: $(FUZZ)

$(B)/obj $(B)/unit $(B)/fuzz $(B)/drivers:
	mkdir -p $@

# Sanitizer build of the daemon and unit tests into build/asan.
asan:
	$(MAKE) B=build/asan CC=clang CFLAGS="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" all $(patsubst $(B)/%,build/asan/%,$(UNIT))

clean:
	rm -rf $(B)/obj $(B)/unit $(B)/fuzz $(B)/drivers $(B)/tandem $(B)/libtandem.a build/asan

help:
	@echo "make          build build/tandem"
	@echo "make unit     build and run the cmocka unit tests"
	@echo "make fuzz     build the libFuzzer targets into build/fuzz"
	@echo "make drivers  build the outbound integration-test drivers into build/drivers"
	@echo "make asan     ASan+UBSan build into build/asan"
