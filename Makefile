# ngx_device_auth_module: build, test and demo on Debian 12.
#
#   make deps     install what is missing with apt (nothing when all is there)
#   make          build build/ngx_http_device_auth_module.so
#   make test     build and run the whole suite (prove t/)
#   make demo     start a demo edge (nginx + redis + sample PKI) and drive it
#   make demo-stop

SHELL       := /bin/bash
NGX_SRC     ?= /usr/share/nginx/src
NGINX       ?= /usr/sbin/nginx
BUILD       := $(CURDIR)/build
MODULE      := $(BUILD)/ngx_http_device_auth_module.so
SCRIPT_H    := $(BUILD)/ngx_http_device_auth_script.h
TOOLS       := $(BUILD)/tools

DEB_PACKAGES := build-essential nginx nginx-dev libssl-dev libhiredis-dev \
                redis-server redis-tools libio-socket-ssl-perl \
                libnet-ssleay-perl libpcre2-dev zlib1g-dev curl openssl \
                perl

SRCS := $(wildcard src/*.c src/*.h src/*.lua) config

CC          ?= cc
TOOL_CFLAGS := -g -O2 -Wall -Wextra -Werror -Wno-unused-parameter -Isrc

.PHONY: all deps module tools test demo demo-stop clean

all: module tools

deps:
	@missing=""; \
	for p in $(DEB_PACKAGES); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null \
	        | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "installing:$$missing"; \
	    sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    $$sudo apt-get update -qq && \
	    $$sudo apt-get install -y -qq --no-install-recommends $$missing \
	        >/dev/null || exit 1; \
	fi

module: deps $(MODULE)

# Debian ships the nginx headers and configure scripts but no top-level
# Makefile; configure writes one into the current directory, so it runs in
# a private copy of the tree and builds into build/.
$(BUILD)/nginx-src/configure: | deps
	rm -rf $(BUILD)/nginx-src
	mkdir -p $(BUILD)
	cp -r $(NGX_SRC) $(BUILD)/nginx-src

$(BUILD)/Makefile: config $(BUILD)/nginx-src/configure
	cd $(BUILD)/nginx-src && . ./conf_flags && \
	    ./configure "$${NGX_CONF_FLAGS[@]}" \
	        --with-cc-opt="-g -O2 -fstack-protector-strong -Wformat \
	            -Werror=format-security -fPIC -D_FORTIFY_SOURCE=2 \
	            $(EXTRA_CFLAGS)" \
	        --with-ld-opt="-Wl,-z,relro -Wl,-z,now -fPIC $(EXTRA_LDFLAGS)" \
	        --add-dynamic-module=$(CURDIR) --builddir=$(BUILD) \
	        > $(BUILD)/configure.log 2>&1 \
	    || { tail -20 $(BUILD)/configure.log; exit 1; }

# The Lua script is embedded at build time as a C string.
$(SCRIPT_H): src/ngx_http_device_auth_script.lua
	mkdir -p $(BUILD)
	{ echo '/* generated from src/ngx_http_device_auth_script.lua */'; \
	  echo 'static const char ngx_http_device_auth_script_src[] ='; \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/    "/' -e 's/$$/\\n"/' $<; \
	  echo '    ;'; } > $@.tmp && mv $@.tmp $@

$(MODULE): $(BUILD)/Makefile $(SCRIPT_H) $(SRCS)
	cd $(BUILD)/nginx-src && $(MAKE) -s -f $(BUILD)/Makefile modules
	@$(NGINX) -V 2>&1 | head -1 >/dev/null

# Small programs that run the plain-OpenSSL policy code without nginx.
tools: $(TOOLS)/certcheck

$(TOOLS)/certcheck: t/tools/certcheck.c src/ngx_device_auth_cert.c \
                    src/ngx_device_auth_cert.h | deps
	mkdir -p $(TOOLS)
	$(CC) $(TOOL_CFLAGS) -o $@ t/tools/certcheck.c \
	    src/ngx_device_auth_cert.c -lcrypto

# the suite's test PKI, made once (t/lib/mkpki.sh); the harness makes its
# own when DEVICE_AUTH_PKI is not set
T_PKI := $(BUILD)/t-pki

$(T_PKI)/.done: t/lib/mkpki.sh
	rm -rf $(T_PKI)
	bash t/lib/mkpki.sh $(T_PKI)

test: all $(T_PKI)/.done fuzz-regress
	DEVICE_AUTH_PKI=$(T_PKI) prove -r t/

demo: all
	@bash demo/demo.sh start

demo-stop:
	@bash demo/demo.sh stop

clean:
	rm -rf $(BUILD)


# ============================================================= fuzzing
# libFuzzer targets for the plain-C code (no nginx types): certificate
# policy, device_auth_redis arguments, Redis script replies.  See
# fuzz/README.md.
#
#   make fuzz                    build and run each target FUZZ_SECONDS (60)
#   make fuzz FUZZ_SECONDS=20    the short run for CI
#   make fuzz-regress            replay fuzz/regressions/<target>/* once each
#   make fuzz-build              only build build/fuzz/<target>
#
# Corpora accumulate in build/fuzz-corpus/<target>; a crash is saved under
# build/fuzz-artifacts/<target>/, the full output in build/fuzz-logs/.

FUZZ_PACKAGES  := clang-14 libclang-rt-14-dev libssl-dev libhiredis-dev \
                  openssl perl
FUZZ_CC        ?= clang-14
FUZZ_SECONDS   ?= 60
FUZZ_TARGETS   := fuzz_cert fuzz_address fuzz_reply
FUZZ_BUILD     := $(BUILD)/fuzz
FUZZ_SEEDS     := $(BUILD)/fuzz-seeds
FUZZ_CORPUS    := $(BUILD)/fuzz-corpus
FUZZ_ARTIFACTS := $(BUILD)/fuzz-artifacts
FUZZ_LOGS      := $(BUILD)/fuzz-logs
FUZZ_CFLAGS    := -g -O1 -fsanitize=fuzzer,address,undefined \
                  -fno-sanitize-recover=undefined -Wall -Wextra \
                  -Wno-unused-parameter -Isrc -Ifuzz -I$(FUZZ_BUILD)
FUZZ_LIBS      := -lssl -lcrypto -lhiredis
FUZZ_ENV       := ASAN_OPTIONS=$${ASAN_OPTIONS:-detect_leaks=1} \
                  UBSAN_OPTIONS=$${UBSAN_OPTIONS:-print_stacktrace=1}

# per target: the code under test and the libFuzzer options
FUZZ_SRC_fuzz_cert     := src/ngx_device_auth_cert.c
FUZZ_SRC_fuzz_address  := src/ngx_device_auth_address.c
FUZZ_SRC_fuzz_reply    := src/ngx_device_auth_reply.c
FUZZ_OPTS_fuzz_cert    := -max_len=8192 -dict=fuzz/fuzz_cert.dict
FUZZ_OPTS_fuzz_address := -max_len=1024 -dict=fuzz/fuzz_address.dict
FUZZ_OPTS_fuzz_reply   := -max_len=4096 -dict=fuzz/fuzz_reply.dict

FUZZ_BINS := $(addprefix $(FUZZ_BUILD)/,$(FUZZ_TARGETS))

.PHONY: fuzz fuzz-deps fuzz-build fuzz-seeds fuzz-regress

fuzz-deps:
	@missing=""; \
	for p in $(FUZZ_PACKAGES); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null \
	        | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "installing:$$missing"; \
	    sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    $$sudo apt-get update -qq && \
	    $$sudo apt-get install -y -qq --no-install-recommends $$missing \
	        >/dev/null || exit 1; \
	fi

fuzz-build: fuzz-deps $(FUZZ_BINS)

# the pinned roots and signers of fuzz_cert, compiled in from the
# committed Microchip certificates
$(FUZZ_BUILD)/fuzz_cert_pins.h: $(wildcard fuzz/seeds/cert/root-*.pem) \
                                $(wildcard fuzz/seeds/cert/signer-*.pem)
	mkdir -p $(FUZZ_BUILD)
	{ echo '/* generated from fuzz/seeds/cert/{root,signer}-*.pem */'; \
	  for kind in roots signers; do \
	    echo "static const char fuzz_pinned_$$kind[] ="; \
	    cat fuzz/seeds/cert/$$(echo $$kind | sed 's/s$$//')-*.pem \
	      | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/    "/' \
	            -e 's/$$/\\n"/'; \
	    echo '    ;'; \
	  done; } > $@.tmp && mv $@.tmp $@

$(FUZZ_BUILD)/%: fuzz/%.c fuzz/fuzz_common.h src/ngx_device_auth_cert.h \
                 src/ngx_device_auth_address.h src/ngx_device_auth_reply.h \
                 $(FUZZ_SRC_fuzz_cert) $(FUZZ_SRC_fuzz_address) \
                 $(FUZZ_SRC_fuzz_reply) $(FUZZ_BUILD)/fuzz_cert_pins.h \
                 | fuzz-deps
	mkdir -p $(FUZZ_BUILD)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_SRC_$*) $(FUZZ_LIBS)

fuzz-seeds: $(FUZZ_SEEDS)/.done

$(FUZZ_SEEDS)/.done: fuzz/gen-seeds.sh fuzz/seeds/address.txt \
                     fuzz/seeds/reply.txt fuzz/seeds/reply2bin.pl \
                     $(wildcard fuzz/seeds/cert/*.pem) | fuzz-deps
	bash fuzz/gen-seeds.sh $(FUZZ_SEEDS)
	touch $@

# Each target in turn (one process, one core), new inputs kept in
# build/fuzz-corpus/<target>; the seeds and the regressions are read too.
fuzz: fuzz-build fuzz-seeds
	@failed=""; \
	for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(FUZZ_CORPUS)/$$t $(FUZZ_ARTIFACTS)/$$t $(FUZZ_LOGS); \
	    case $$t in \
	    fuzz_cert)    opts="$(FUZZ_OPTS_fuzz_cert)" ;; \
	    fuzz_address) opts="$(FUZZ_OPTS_fuzz_address)" ;; \
	    fuzz_reply)   opts="$(FUZZ_OPTS_fuzz_reply)" ;; \
	    esac; \
	    log=$(FUZZ_LOGS)/$$t.log; \
	    reg=fuzz/regressions/$$t; [ -d $$reg ] || reg=; \
	    echo "fuzz: $$t for $(FUZZ_SECONDS)s ($$log)"; \
	    if $(FUZZ_ENV) $(FUZZ_BUILD)/$$t $$opts \
	           -max_total_time=$(FUZZ_SECONDS) -timeout=25 \
	           -print_final_stats=1 \
	           -artifact_prefix=$(FUZZ_ARTIFACTS)/$$t/ \
	           $(FUZZ_CORPUS)/$$t $(FUZZ_SEEDS)/$$t $$reg \
	           > $$log 2>&1; \
	    then \
	        echo "fuzz: $$t ok: $$(grep -E '^stat::number_of_executed_units' \
	            $$log | awk '{print $$2}') runs, corpus $$(ls \
	            $(FUZZ_CORPUS)/$$t | wc -l) files"; \
	    else \
	        failed="$$failed $$t"; \
	        tail -60 $$log; \
	        echo "fuzz: $$t FAILED; the input is in $(FUZZ_ARTIFACTS)/$$t/:"; \
	        ls -t $(FUZZ_ARTIFACTS)/$$t | head -3 | sed 's/^/    /'; \
	        echo "    copy it to fuzz/regressions/$$t/ (see fuzz/README.md)"; \
	    fi; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: failed:$$failed"; exit 1; fi

# Replay the committed inputs of past findings: no fuzzing, a second or so.
fuzz-regress: fuzz-build
	@failed=""; \
	for t in $(FUZZ_TARGETS); do \
	    files=$$(find fuzz/regressions/$$t -maxdepth 1 -type f \
	             ! -name '.*' ! -name '*.md' 2>/dev/null | sort); \
	    [ -n "$$files" ] || continue; \
	    mkdir -p $(FUZZ_LOGS); \
	    log=$(FUZZ_LOGS)/$$t-regress.log; \
	    if $(FUZZ_ENV) $(FUZZ_BUILD)/$$t $$files > $$log 2>&1; then \
	        echo "fuzz-regress: $$t ok ($$(echo $$files | wc -w) inputs)"; \
	    else \
	        failed="$$failed $$t"; \
	        tail -40 $$log; \
	        echo "fuzz-regress: $$t FAILED"; \
	    fi; \
	done; \
	if [ -n "$$failed" ]; then exit 1; fi
