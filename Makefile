# ngx_device_auth_module: build, test and demo on Debian 12.
#
#   make deps     install what is missing with apt (nothing when all is there)
#   make          build build/ngx_http_device_auth_module.so and
#                 build/device-auth (the command-line tool, cli/)
#   make test     build and run the whole suite (prove t/)
#   make t-manifest  the 100,000-entry manifest of t/manifest-big.t, made
#                 once into build/t-manifest (make test makes it)
#   make test-asan, make test-valgrind   the suite under sanitizers (below)
#   make demo     start a demo edge (nginx + redis + sample PKI) and drive it
#   make test-nginx NGINX_VERSION=1.28.3   the suite against another nginx
#   make deb      the Debian package (make test-deb: installed and tried)
#   make demo-stop

SHELL       := /bin/bash
NGX_SRC     ?= /usr/share/nginx/src
NGINX       ?= /usr/sbin/nginx
BUILD       := $(CURDIR)/build
MODULE      := $(BUILD)/ngx_http_device_auth_module.so
TOOLS       := $(BUILD)/tools

DEB_PACKAGES := build-essential nginx nginx-dev libssl-dev libhiredis-dev \
                redis-server redis-tools redis-sentinel libio-socket-ssl-perl \
                libnet-ssleay-perl libpcre2-dev zlib1g-dev curl openssl strace \
                perl libjansson-dev time ngtcp2-client libnghttp3-dev

SRCS := $(wildcard src/*.c src/*.h src/*.lua) config config.make \
        auto/script_h.sh

# a module of the tests, built beside this one: a rewrite handler loaded
# after device_auth (t/module-order.t)
ORDER_FIXTURE := $(CURDIR)/t/fixtures/order_module

CC          ?= cc
TOOL_CFLAGS := -g -O2 -Wall -Wextra -Werror -Wno-unused-parameter -Isrc \
               -Icli

# device-auth: cli/ and the module's plain-C policy and address code
CLI         := $(BUILD)/device-auth
CLI_SRCS    := $(wildcard cli/*.c) src/ngx_device_auth_cert.c \
               src/ngx_device_auth_verify.c \
               src/ngx_device_auth_address.c
CLI_HDRS    := $(wildcard cli/*.h) src/ngx_device_auth_cert.h \
               src/ngx_device_auth_verify.h \
               src/ngx_device_auth_address.h
CLI_LIBS    := -ljansson -lhiredis -lcrypto 

# apt_install: install those of the Debian packages $(1) that are missing,
# with sudo unless root; nothing at all (not even apt-get update) when every
# one is there
define apt_install
missing=""; \
for p in $(1); do \
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
endef

.PHONY: all deps module cli cli-install tools test demo demo-stop clean bench-loadgen \
        t-manifest

all: module cli tools

deps:
	@$(call apt_install,$(DEB_PACKAGES))

module: deps $(MODULE)

# Debian ships the nginx headers and configure scripts but no top-level
# Makefile; configure writes one into the current directory, so it runs in
# a private copy of the tree and builds into build/.
$(BUILD)/nginx-src/configure: | deps
	rm -rf $(BUILD)/nginx-src
	mkdir -p $(BUILD)
	cp -r $(NGX_SRC) $(BUILD)/nginx-src

$(BUILD)/Makefile: config config.make $(ORDER_FIXTURE)/config \
                   $(BUILD)/nginx-src/configure
	cd $(BUILD)/nginx-src && . ./conf_flags && \
	    ./configure "$${NGX_CONF_FLAGS[@]}" \
	        --with-cc-opt="-g -O2 -fstack-protector-strong -Wformat \
	            -Werror=format-security -fPIC -D_FORTIFY_SOURCE=2 \
	            $(EXTRA_CFLAGS)" \
	        --with-ld-opt="-Wl,-z,relro -Wl,-z,now -fPIC $(EXTRA_LDFLAGS)" \
	        --add-dynamic-module=$(CURDIR) \
	        --add-dynamic-module=$(ORDER_FIXTURE) --builddir=$(BUILD) \
	        > $(BUILD)/configure.log 2>&1 \
	    || { tail -20 $(BUILD)/configure.log; exit 1; }

# The Lua script is embedded at build time as a C string: config.make adds
# the rule that makes $(BUILD)/ngx_http_device_auth_script.h to nginx's
# Makefile (auto/script_h.sh), as for any "--add-dynamic-module" build.
$(MODULE): $(BUILD)/Makefile $(SRCS) $(wildcard $(ORDER_FIXTURE)/*.c)
	cd $(BUILD)/nginx-src && $(MAKE) -s -f $(BUILD)/Makefile modules
	@$(NGINX) -V 2>&1 | head -1 >/dev/null

cli: deps $(CLI)

# device-auth for the Debian package (debian/rules): built without "deps"
# (no apt inside a package build: debian/control's Build-Depends bring what
# it needs), with the distribution's flags in CLI_BUILD_FLAGS, installed as
# $(DESTDIR)/usr/bin/device-auth (its manual page: debian/device-auth.1)
CLI_BUILD_FLAGS ?=

cli-install:
	mkdir -p $(BUILD)
	$(CC) $(TOOL_CFLAGS) $(CLI_BUILD_FLAGS) -o $(BUILD)/device-auth.pkg \
	    $(CLI_SRCS) $(CLI_LIBS)
	install -D -m 0755 $(BUILD)/device-auth.pkg $(DESTDIR)/usr/bin/device-auth

$(CLI): $(CLI_SRCS) $(CLI_HDRS) | deps
	mkdir -p $(BUILD)
	$(CC) $(TOOL_CFLAGS) -o $@ $(CLI_SRCS) $(CLI_LIBS)

# what the tests need besides: the manifest generator, made of the load
# generator's fleet code; the request-header shim of the HTTP/3 client
# (t/http3.t)
tools: $(TOOLS)/manifest-gen $(TOOLS)/h3headers.so

$(TOOLS)/h3headers.so: t/tools/h3headers.c | deps
	mkdir -p $(TOOLS)
	$(CC) $(TOOL_CFLAGS) -fPIC -shared -o $@ $< -ldl

MG_SRCS := t/tools/manifest_gen.c bench/lg_fleet.c bench/lg_fleet_gen.c \
           cli/ngx_device_auth_base64.c cli/ngx_device_auth_jws.c \
           src/ngx_device_auth_cert.c src/ngx_device_auth_verify.c

$(TOOLS)/manifest-gen: $(MG_SRCS) bench/lg_fleet.h cli/ngx_device_auth_jws.h \
                       cli/ngx_device_auth_base64.h | deps
	mkdir -p $(TOOLS)
	$(CC) $(TOOL_CFLAGS) -Ibench -o $@ $(MG_SRCS) -ljansson -lssl -lcrypto

# the suite's test PKI, made once (t/lib/mkpki.sh); the harness makes its
# own when DEVICE_AUTH_PKI is not set
T_PKI := $(BUILD)/t-pki

$(T_PKI)/.done: t/lib/mkpki.sh
	rm -rf $(T_PKI)
	bash t/lib/mkpki.sh $(T_PKI)

# the 100,000-entry manifest of t/manifest-big.t (about 370 MB), made
# once with build/tools/manifest-gen (t/lib/mkmanifest.sh); a new build of
# the generator does not make it again (25 s), make clean does
T_MANIFEST   := $(BUILD)/t-manifest
T_MANIFEST_N := 100000

t-manifest: $(T_MANIFEST)/.done

$(T_MANIFEST)/.done: t/lib/mkmanifest.sh $(T_PKI)/.done | $(TOOLS)/manifest-gen
	rm -rf $(T_MANIFEST)
	bash t/lib/mkmanifest.sh $(T_MANIFEST) $(T_PKI) $(T_MANIFEST_N)

test: all $(T_PKI)/.done $(T_MANIFEST)/.done fuzz-regress bench-loadgen
	DEVICE_AUTH_PKI=$(T_PKI) DEVICE_AUTH_MANIFEST=$(T_MANIFEST) prove -r t/

# the load generator, for the faults-under-load tests and make bench
bench-loadgen: deps
	$(MAKE) -s -C bench

demo: all
	@bash demo/demo.sh start

demo-stop:
	@bash demo/demo.sh stop

clean:
	rm -rf $(BUILD)


# ============================================================= fuzzing
# libFuzzer targets for the plain-C code (no nginx types): certificate
# policy, device_auth_redis arguments, Redis script replies, Sentinel and
# Cluster replies and key slots, and the manifests of device-auth
# import-manifest.  See fuzz/README.md.
#
#   make fuzz                    build and run each target FUZZ_SECONDS (60)
#   make fuzz FUZZ_SECONDS=20    the short run for CI
#   make fuzz-regress            replay fuzz/regressions/<target>/* once each
#   make fuzz-build              only build build/fuzz/<target>
#
# Corpora accumulate in build/fuzz-corpus/<target>; a crash is saved under
# build/fuzz-artifacts/<target>/, the full output in build/fuzz-logs/.

FUZZ_PACKAGES  := clang-14 libclang-rt-14-dev libssl-dev libhiredis-dev \
                  libjansson-dev openssl perl
FUZZ_CC        ?= clang-14
FUZZ_SECONDS   ?= 60
FUZZ_TARGETS   := fuzz_cert fuzz_address fuzz_reply fuzz_resp fuzz_manifest \
                  fuzz_topology
FUZZ_BUILD     := $(BUILD)/fuzz
FUZZ_SEEDS     := $(BUILD)/fuzz-seeds
FUZZ_CORPUS    := $(BUILD)/fuzz-corpus
FUZZ_ARTIFACTS := $(BUILD)/fuzz-artifacts
FUZZ_LOGS      := $(BUILD)/fuzz-logs
FUZZ_CFLAGS    := -g -O1 -fsanitize=fuzzer,address,undefined \
                  -fno-sanitize-recover=undefined -Wall -Wextra \
                  -Wno-unused-parameter -Isrc -Icli -Ifuzz -I$(FUZZ_BUILD)
FUZZ_LIBS      := -lssl -lcrypto -lhiredis -ljansson
FUZZ_ENV       := ASAN_OPTIONS=$${ASAN_OPTIONS:-detect_leaks=1} \
                  UBSAN_OPTIONS=$${UBSAN_OPTIONS:-print_stacktrace=1}

# per target: the code under test and the libFuzzer options
FUZZ_SRC_fuzz_cert     := src/ngx_device_auth_cert.c \
                          src/ngx_device_auth_verify.c
FUZZ_SRC_fuzz_address  := src/ngx_device_auth_address.c
FUZZ_SRC_fuzz_reply    := src/ngx_device_auth_reply.c \
                          src/ngx_device_auth_decide.c \
                          src/ngx_device_auth_keys.c \
                          src/ngx_device_auth_slot.c \
                          src/ngx_device_auth_resp.c
FUZZ_SRC_fuzz_resp     := src/ngx_device_auth_resp.c
FUZZ_SRC_fuzz_manifest := cli/ngx_device_auth_manifest.c \
                          cli/ngx_device_auth_jws.c \
                          cli/ngx_device_auth_base64.c \
                          cli/ngx_device_auth_registration.c \
                          src/ngx_device_auth_cert.c \
                          src/ngx_device_auth_verify.c
FUZZ_SRC_fuzz_topology := src/ngx_device_auth_topology.c \
                          src/ngx_device_auth_address.c \
                          src/ngx_device_auth_slot.c
FUZZ_OPTS_fuzz_cert    := -max_len=8192 -dict=fuzz/fuzz_cert.dict
FUZZ_OPTS_fuzz_address := -max_len=1024 -dict=fuzz/fuzz_address.dict
FUZZ_OPTS_fuzz_reply   := -max_len=4096 -dict=fuzz/fuzz_reply.dict
FUZZ_OPTS_fuzz_resp    := -max_len=4096 -dict=fuzz/fuzz_reply.dict
FUZZ_OPTS_fuzz_manifest := -max_len=16384 -dict=fuzz/fuzz_manifest.dict
FUZZ_OPTS_fuzz_topology := -max_len=4096 -dict=fuzz/fuzz_topology.dict

FUZZ_BINS := $(addprefix $(FUZZ_BUILD)/,$(FUZZ_TARGETS))

.PHONY: fuzz fuzz-deps fuzz-build fuzz-seeds fuzz-regress

fuzz-deps:
	@$(call apt_install,$(FUZZ_PACKAGES))

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

# fuzz_manifest's log signers: Microchip's, compiled in from the committed
# certificates, and one made here, whose key signs mutated entries again
$(FUZZ_BUILD)/fuzz_manifest_keys.h: \
        $(wildcard fuzz/seeds/cert/manifest-signer-*.pem) | fuzz-deps
	mkdir -p $(FUZZ_BUILD)/log-signer
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
	    -nodes -keyout $(FUZZ_BUILD)/log-signer/key.pem \
	    -out $(FUZZ_BUILD)/log-signer/cert.pem -days 36500 \
	    -subj "/CN=fuzz_manifest log signer" \
	    -addext basicConstraints=critical,CA:FALSE \
	    -addext subjectKeyIdentifier=hash 2>/dev/null
	{ echo '/* generated by the Makefile */'; \
	  for v in "fuzz_mchp_log_signers fuzz/seeds/cert/manifest-signer-*.pem" \
	           "fuzz_own_log_signer $(FUZZ_BUILD)/log-signer/cert.pem" \
	           "fuzz_own_log_key $(FUZZ_BUILD)/log-signer/key.pem"; do \
	    set -- $$v; name=$$1; shift; \
	    echo "static const char $$name[] ="; \
	    cat "$$@" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' \
	                    -e 's/^/    "/' -e 's/$$/\\n"/'; \
	    echo '    ;'; \
	  done; } > $@.tmp && mv $@.tmp $@

$(FUZZ_BUILD)/%: fuzz/%.c fuzz/fuzz_common.h src/ngx_device_auth_cert.h \
                 src/ngx_device_auth_verify.h \
                 src/ngx_device_auth_address.h src/ngx_device_auth_reply.h \
                 src/ngx_device_auth_resp.h src/ngx_device_auth_decide.h \
                 src/ngx_device_auth_keys.h \
                 src/ngx_device_auth_topology.h src/ngx_device_auth_slot.h \
                 $(FUZZ_SRC_fuzz_cert) $(FUZZ_SRC_fuzz_address) \
                 $(FUZZ_SRC_fuzz_reply) $(FUZZ_SRC_fuzz_resp) \
                 $(FUZZ_SRC_fuzz_manifest) $(FUZZ_SRC_fuzz_topology) \
                 $(wildcard cli/ngx_device_auth_*.h) \
                 $(FUZZ_BUILD)/fuzz_cert_pins.h \
                 $(FUZZ_BUILD)/fuzz_manifest_keys.h \
                 | fuzz-deps
	mkdir -p $(FUZZ_BUILD)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_SRC_$*) $(FUZZ_LIBS)

fuzz-seeds: $(FUZZ_SEEDS)/.done

$(FUZZ_SEEDS)/.done: fuzz/gen-seeds.sh fuzz/seeds/address.txt \
                     fuzz/seeds/topology.txt \
                     t/data/atecc608/manifest-trustandgo-atecc608a-mah4i.json \
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
	    fuzz_resp)    opts="$(FUZZ_OPTS_fuzz_resp)" ;; \
	    fuzz_manifest) opts="$(FUZZ_OPTS_fuzz_manifest)" ;; \
	    fuzz_topology) opts="$(FUZZ_OPTS_fuzz_topology)" ;; \
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


# ============================================================ sanitizers
#   make test-asan       nginx 1.22.1 AND the module built with ASan+UBSan
#                        (from the Debian orig tarball, Debian's configure
#                        flags), then the whole suite against them (but
#                        t/bench.t); any sanitizer report fails the run
#   make test-valgrind   nginx 1.22.1 and the module built plainly from
#                        the same source, in single-process mode under
#                        valgrind memcheck, for VALGRIND_TESTS (a
#                        representative subset); an invalid read/write, a
#                        use of uninitialised memory or a definite leak
#                        fails the test file (t/lib/DeviceAuth/Test.pm)
#   make test-asan ASAN_TESTS=t/tls.t    one file (prove's arguments)
#
# Reports: build/asan-reports/san.<exe>.<pid> (printed at the end, and by
# the test file during which they appeared); valgrind logs in each test's
# directory (printed by the test that fails).  Suppressions and the test
# build's patch of nginx, each with its reason: sanitizers/.

SAN_PACKAGES    := build-essential clang-14 libclang-rt-14-dev valgrind curl \
                   patch \
                   nginx-dev libssl-dev libhiredis-dev libpcre2-dev \
                   zlib1g-dev redis-server redis-tools perl \
                   libio-socket-ssl-perl libnet-ssleay-perl openssl \
                   libjansson-dev

NGX_VERSION     := 1.22.1
NGX_ORIG        := $(BUILD)/nginx_$(NGX_VERSION).orig.tar.gz
NGX_ORIG_URL    := http://deb.debian.org/debian/pool/main/n/nginx/nginx_$(NGX_VERSION).orig.tar.gz
NGX_ORIG_SHA256 := 9ebb333a9e82b952acd3e2b4aeb1d4ff6406f72491bab6cd9fe69f0dea737f31
NGX_ORIG_SRC    := $(BUILD)/nginx-$(NGX_VERSION)
NGX_PATCHES     := $(wildcard $(CURDIR)/sanitizers/*.patch)

ASAN_CC         ?= clang-14
# The sanitizer flags of nginx, the module and device-auth, and the
# exceptions made for nginx core, each with its reason:
# - nginx core passes NULL with a length of 0 to memcpy() in places
#   (ngx_pstrdup() of an empty string...): that one check is made
#   recoverable so that sanitizers/ubsan.supp can name those core
#   functions; a report it does not suppress still stops the process
#   (halt_on_error=1) and fails the run
# - every dynamic module defines its own "ngx_modules" array, which the
#   executable's interposes: without ODR indicators the module's ASan
#   globals registration poisons nginx's array (a false
#   global-buffer-overflow in ngx_cycle_modules() on reload)
# - nginx dlclose()s the module when it frees its configuration, before
#   LeakSanitizer looks at exit: -z nodelete keeps it mapped, so that
#   leak reports name the module's functions
# - nginx core reads and writes unaligned words on x86 by design
#   (NGX_HAVE_NONALIGNED: request line parser, HTTP/2 frames): its
#   portable byte-wise code is built instead
SAN_EXCEPTIONS  := -fsanitize-recover=nonnull-attribute \
                   -fsanitize-address-use-odr-indicator
SAN_FLAGS       := -fsanitize=address,undefined -fno-omit-frame-pointer \
                   -fno-sanitize-recover=undefined $(SAN_EXCEPTIONS)
ASAN_NGX_CFLAGS := -DNGX_HAVE_NONALIGNED=0
ASAN_LD_OPT     := $(SAN_FLAGS) -Wl,-z,relro -Wl,-z,now -fPIC -Wl,-z,nodelete
ASAN_BUILD      := $(BUILD)/asan
ASAN_NGINX      := $(ASAN_BUILD)/nginx
ASAN_MODULE     := $(ASAN_BUILD)/ngx_http_device_auth_module.so
ASAN_CLI        := $(ASAN_BUILD)/device-auth
# workers run as "nobody" and write their reports too: outside the
# checkout, which may be in a private directory (/root), one per checkout
ASAN_REPORTS    := $(or $(TMPDIR),/tmp)/device-auth-asan.$(shell \
                   printf %s '$(CURDIR)' | sha256sum | cut -c1-12)
SAN_SUPP        := $(CURDIR)/sanitizers
# LeakSanitizer reads its suppressions when a process exits, and workers
# exit as "nobody": the files are copied beside the reports, out of the
# checkout (a private directory such as /root would make each worker's
# leak check fail: "failed to read suppressions file")
SAN_SUPP_RUN    := $(ASAN_REPORTS).supp
# every test file but t/bench.t, which always runs the stock nginx (its
# Lua peer is built for it): nothing there for the sanitizers to see
ASAN_TESTS      ?= $(filter-out t/bench.t,$(wildcard t/*.t))

# Halt on the first error; reports go to files, never to stderr (nginx
# dup2()s its error log onto stderr, and the tests read both).  ASan, LSan
# and UBSan share one runtime and one log_path: san.<exe>.<pid>.
# Allocation stacks are unwound by frame pointers: those through OpenSSL
# or PCRE2 (built without) stop there.  ASAN_EXTRA=fast_unwind_on_malloc=0
# gets whole stacks, at a price: TLS handshakes (hundreds of mallocs each)
# become several times slower, too slow for t/load-faults.t.
SAN_LOG  := $(ASAN_REPORTS)/san
ASAN_EXTRA ?=
ASAN_ENV := \
    ASAN_OPTIONS=log_path=$(SAN_LOG):log_exe_name=1:detect_leaks=1:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1:suppressions=$(SAN_SUPP_RUN)/asan.supp$(if $(ASAN_EXTRA),:$(ASAN_EXTRA)) \
    LSAN_OPTIONS=suppressions=$(SAN_SUPP_RUN)/lsan.supp:print_suppressions=0 \
    UBSAN_OPTIONS=log_path=$(SAN_LOG):log_exe_name=1:print_stacktrace=1:halt_on_error=1:suppressions=$(SAN_SUPP_RUN)/ubsan.supp

# valgrind runs a plain build of the same patched tree (symbols, and the
# exit patch: the stock nginx -t leaks its configuration too), with the
# compiler flags of the normal module build
VG_BUILD        := $(BUILD)/valgrind
VG_NGINX        := $(VG_BUILD)/nginx
VG_MODULE       := $(VG_BUILD)/ngx_http_device_auth_module.so
VG_CFLAGS       := -g -O2 -fstack-protector-strong -Wformat \
                   -Werror=format-security -fPIC -D_FORTIFY_SOURCE=2

# The valgrind subset: every test file that runs nginx in one process,
# minus those whose point is load or timing (redis-faults.t, load-faults.t,
# bench.t) or the runbook (operations.t); the files skip what needs
# reloads or several workers.  About 4 minutes on 2 cores.
VALGRIND_TESTS  ?= t/00-build.t t/config.t t/tls.t t/headers.t t/sni.t \
                   t/resume.t t/http2.t t/subrequest.t t/redis.t t/metrics.t

.PHONY: san-deps asan-build vg-build test-asan test-valgrind FORCE

FORCE:

san-deps:
	@$(call apt_install,$(SAN_PACKAGES))

# the full nginx source (nginx-dev has no .c files), downloaded once
$(NGX_ORIG): | san-deps
	mkdir -p $(BUILD)
	curl -fsSL --retry 3 -o $@.tmp $(NGX_ORIG_URL)
	echo "$(NGX_ORIG_SHA256)  $@.tmp" | sha256sum -c --quiet - \
	    || { rm -f $@.tmp; echo "$(NGX_ORIG): bad sha256"; exit 1; }
	mv $@.tmp $@

# the tree is patched for the test build: sanitizers/*.patch say why
$(NGX_ORIG_SRC)/configure: $(NGX_ORIG) $(NGX_PATCHES)
	echo "$(NGX_ORIG_SHA256)  $<" | sha256sum -c --quiet -
	rm -rf $(NGX_ORIG_SRC)
	tar -C $(BUILD) --no-same-owner -xzf $<
	for p in $(NGX_PATCHES); do \
	    patch -s -d $(NGX_ORIG_SRC) -p1 < $$p || exit 1; \
	done
	touch $@

# nginx and the module in one configure, so that both are instrumented;
# feature tests run with leak detection off (some of them leak on purpose)
$(ASAN_BUILD)/Makefile: config config.make $(ORDER_FIXTURE)/config \
                        $(NGX_ORIG_SRC)/configure \
                        $(NGX_SRC)/conf_flags $(ASAN_BUILD)/.flags
	mkdir -p $(ASAN_BUILD)
	cd $(NGX_ORIG_SRC) && . $(NGX_SRC)/conf_flags && \
	    ASAN_OPTIONS=detect_leaks=0 ./configure "$${NGX_CONF_FLAGS[@]}" \
	        --with-cc=$(ASAN_CC) \
	        --with-cc-opt="-g -O1 $(SAN_FLAGS) $(ASAN_NGX_CFLAGS) -fPIC" \
	        --with-ld-opt="$(ASAN_LD_OPT)" \
	        --add-dynamic-module=$(CURDIR) \
	        --add-dynamic-module=$(ORDER_FIXTURE) --builddir=$(ASAN_BUILD) \
	        > $(ASAN_BUILD)/configure.log 2>&1 \
	    || { tail -20 $(ASAN_BUILD)/configure.log; exit 1; }

# configure again when the compiler or the flags change
$(ASAN_BUILD)/.flags: FORCE
	@mkdir -p $(ASAN_BUILD)
	@echo '$(ASAN_CC) $(SAN_FLAGS) $(ASAN_NGX_CFLAGS) $(ASAN_LD_OPT)' \
	    | cmp -s - $@ \
	    || echo '$(ASAN_CC) $(SAN_FLAGS) $(ASAN_NGX_CFLAGS) $(ASAN_LD_OPT)' \
	         > $@

$(ASAN_CLI): $(CLI_SRCS) $(CLI_HDRS) $(ASAN_BUILD)/.flags | san-deps
	mkdir -p $(ASAN_BUILD)
	$(ASAN_CC) $(TOOL_CFLAGS) -O1 $(SAN_FLAGS) -o $@ $(CLI_SRCS) $(CLI_LIBS)

# nginx's own Makefile knows what changed
asan-build: san-deps $(ASAN_BUILD)/Makefile $(ASAN_CLI)
	cd $(NGX_ORIG_SRC) && \
	    $(MAKE) -s -j2 -f $(ASAN_BUILD)/Makefile binary modules

# ASAN_TESTS.  Workers run as "nobody" and write their reports too:
# the report directory is world-writable (sticky), outside the checkout.  The harness fails the
# test file during which a report appeared; this fails the run on any
# report at all, and prints them.
test-asan: asan-build tools $(T_PKI)/.done $(T_MANIFEST)/.done
	@rm -rf $(ASAN_REPORTS) $(SAN_SUPP_RUN); \
	mkdir -p $(ASAN_REPORTS) $(SAN_SUPP_RUN); \
	chmod 1777 $(ASAN_REPORTS); \
	cp $(SAN_SUPP)/asan.supp $(SAN_SUPP)/lsan.supp $(SAN_SUPP)/ubsan.supp \
	    $(SAN_SUPP_RUN)/; \
	chmod 755 $(SAN_SUPP_RUN); chmod 644 $(SAN_SUPP_RUN)/*; \
	start=$$(date +%s); rc=0; \
	NGINX_BINARY=$(ASAN_NGINX) DEVICE_AUTH_MODULE=$(ASAN_MODULE) \
	DEVICE_AUTH_CLI=$(ASAN_CLI) DEVICE_AUTH_PKI=$(T_PKI) \
	DEVICE_AUTH_MANIFEST=$(T_MANIFEST) \
	DEVICE_AUTH_SANITIZER=asan DEVICE_AUTH_SANITIZER_LOGS=$(ASAN_REPORTS) \
	$(ASAN_ENV) prove $(ASAN_TESTS) || rc=$$?; \
	reports=$$(find $(ASAN_REPORTS) -type f | sort); \
	for f in $$reports; do echo "=== $$f"; cat $$f; done; \
	echo "test-asan: $$(( $$(date +%s) - start )) s, prove exit $$rc," \
	     "$$(echo $$reports | wc -w) sanitizer report(s)"; \
	[ $$rc = 0 ] && [ -z "$$reports" ]

$(VG_BUILD)/Makefile: config config.make $(ORDER_FIXTURE)/config \
                      $(NGX_ORIG_SRC)/configure \
                      $(NGX_SRC)/conf_flags
	mkdir -p $(VG_BUILD)
	cd $(NGX_ORIG_SRC) && . $(NGX_SRC)/conf_flags && \
	    ./configure "$${NGX_CONF_FLAGS[@]}" \
	        --with-cc-opt="$(VG_CFLAGS)" \
	        --with-ld-opt="-Wl,-z,relro -Wl,-z,now -fPIC" \
	        --add-dynamic-module=$(CURDIR) \
	        --add-dynamic-module=$(ORDER_FIXTURE) --builddir=$(VG_BUILD) \
	        > $(VG_BUILD)/configure.log 2>&1 \
	    || { tail -20 $(VG_BUILD)/configure.log; exit 1; }

vg-build: san-deps $(VG_BUILD)/Makefile
	cd $(NGX_ORIG_SRC) && \
	    $(MAKE) -s -j2 -f $(VG_BUILD)/Makefile binary modules

# VALGRIND_TESTS, nginx in one process under memcheck (the harness adds
# "master_process off" and reads each run's log: see DEVICE_AUTH_VALGRIND
# in t/lib/DeviceAuth/Test.pm)
test-valgrind: vg-build cli tools $(T_PKI)/.done
	@start=$$(date +%s); rc=0; \
	NGINX_BINARY=$(VG_NGINX) DEVICE_AUTH_MODULE=$(VG_MODULE) \
	DEVICE_AUTH_PKI=$(T_PKI) DEVICE_AUTH_VALGRIND=1 \
	DEVICE_AUTH_VALGRIND_OPTS="--suppressions=$(SAN_SUPP)/valgrind.supp" \
	prove $(VALGRIND_TESTS) || rc=$$?; \
	echo "test-valgrind: $$(( $$(date +%s) - start )) s, prove exit $$rc"; \
	[ $$rc = 0 ]


# ======================================================= nginx versions
#   make test-nginx NGINX_VERSION=1.28.3   build that nginx and the module
#                        the standard way (./configure --with-compat ...
#                        --add-dynamic-module, make modules) into
#                        build/nginx-<version>/, then the whole suite
#                        against them (NGINX_TESTS: prove's arguments)
#   make nginx-build NGINX_VERSION=...     only build nginx and the module
#   make nginx-module NGINX_VERSION=...    only configure and "make modules"
#   make nginx-modules   the module for each of NGINX_VERSIONS (CI)
#
# Sources: the nginx-<version>.tar.gz of NGINX_TARBALLS (the shared
# repository snapshots: ./auto/configure), or for 1.22.1 the Debian orig
# tarball that make test-asan downloads (a release tarball: ./configure).
# nginx builds with -Werror: a warning in the module fails the build.

NGINX_VERSION   ?= 1.29.8
NGINX_VERSIONS  ?= 1.24.0 1.26.3 1.28.3 1.29.8
NGINX_TARBALLS  ?= $(abspath $(CURDIR)/../shared/nginx-src)
NGINX_TESTS     ?= -r t/
NV_BUILD        := $(BUILD)/nginx-$(NGINX_VERSION)
NV_SRC          := $(NV_BUILD)/nginx-$(NGINX_VERSION)
NV_OBJS         := $(NV_BUILD)/objs
NV_NGINX        := $(NV_OBJS)/nginx
NV_MODULE       := $(NV_OBJS)/ngx_http_device_auth_module.so
NV_TARBALL      := $(if $(filter $(NGX_VERSION),$(NGINX_VERSION)),$(NGX_ORIG),$(NGINX_TARBALLS)/nginx-$(NGINX_VERSION).tar.gz)
# HTTP/3 exists from nginx 1.25.0 on (with OpenSSL 3.0: nginx's OpenSSL
# compatibility layer, no 0-RTT)
NV_HTTP3        := $(shell v='$(NGINX_VERSION)'; IFS=.; set -- $$v; \
                     [ "$$1" -gt 1 ] || [ "$${2:-0}" -ge 25 ] && echo yes)
# what the suite uses (SSL, HTTP/2, auth_request, realip, stub_status; ssi,
# mirror, map are built by default), and what an edge has besides
NV_CONF_FLAGS   := --with-compat --with-debug --with-threads \
                   --with-pcre-jit --with-http_ssl_module \
                   --with-http_v2_module \
                   $(if $(NV_HTTP3),--with-http_v3_module) \
                   --with-http_realip_module --with-http_auth_request_module \
                   --with-http_stub_status_module --with-http_sub_module \
                   --with-http_dav_module --with-http_slice_module \
                   --with-stream --with-stream_ssl_module \
                   --with-stream_realip_module \
                   --with-stream_ssl_preread_module
NV_CC_OPT       := -g -O2 -fstack-protector-strong -Wformat \
                   -Werror=format-security -fPIC -D_FORTIFY_SOURCE=2
NV_LD_OPT       := -Wl,-z,relro -Wl,-z,now -fPIC

.PHONY: nginx-build nginx-module nginx-modules test-nginx

$(NGINX_TARBALLS)/nginx-%.tar.gz:
	@echo "no nginx source $@: see $(NGINX_TARBALLS)/README.md," \
	      "or set NGINX_TARBALLS"; exit 1

$(NV_SRC)/.unpacked: $(NV_TARBALL)
	rm -rf $(NV_SRC)
	mkdir -p $(NV_BUILD)
	tar -C $(NV_BUILD) --no-same-owner -xzf $<
	touch $@

# configure as a user would, from the source tree; a release tarball has
# ./configure, a repository snapshot ./auto/configure
# (and the suite's fixture module, for t/module-order.t)
$(NV_OBJS)/Makefile: config config.make $(ORDER_FIXTURE)/config \
                     $(NV_SRC)/.unpacked
	cd $(NV_SRC) && \
	    if [ -f configure ]; then c=./configure; else c=./auto/configure; fi; \
	    $$c $(NV_CONF_FLAGS) --with-cc-opt="$(NV_CC_OPT)" \
	        --with-ld-opt="$(NV_LD_OPT)" \
	        --add-dynamic-module=$(CURDIR) \
	        --add-dynamic-module=$(ORDER_FIXTURE) --builddir=$(NV_OBJS) \
	        > $(NV_BUILD)/configure.log 2>&1 \
	    || { tail -20 $(NV_BUILD)/configure.log; exit 1; }

nginx-module: deps $(NV_OBJS)/Makefile
	cd $(NV_SRC) && $(MAKE) -s modules
	@echo "nginx $(NGINX_VERSION): $(NV_MODULE)"

nginx-build: deps $(NV_OBJS)/Makefile
	cd $(NV_SRC) && $(MAKE) -s -j2 -f $(NV_OBJS)/Makefile binary && \
	    $(MAKE) -s modules
	@$(NV_NGINX) -V 2>&1 | head -1

nginx-modules:
	@for v in $(NGINX_VERSIONS); do \
	    $(MAKE) -s --no-print-directory nginx-module NGINX_VERSION=$$v \
	        || exit 1; \
	done

test-nginx: nginx-build cli tools $(T_PKI)/.done $(T_MANIFEST)/.done \
            bench-tools
	@start=$$(date +%s); rc=0; \
	NGINX_BINARY=$(NV_NGINX) DEVICE_AUTH_MODULE=$(NV_MODULE) \
	DEVICE_AUTH_PKI=$(T_PKI) DEVICE_AUTH_MANIFEST=$(T_MANIFEST) \
	prove $(NGINX_TESTS) || rc=$$?; \
	echo "test-nginx: nginx $(NGINX_VERSION), $$(( $$(date +%s) - start ))" \
	     "s, prove exit $$rc"; \
	[ $$rc = 0 ]


# ================================================================ debian
#   make deb        the Debian package libnginx-mod-http-device-auth for
#                   Debian 12's nginx (debian/: dh with nginx-dev's
#                   dh-sequence-nginx), built from a copy of the tree in
#                   build/deb/src; the .deb in build/deb/; then lintian
#                   (debian/*.lintian-overrides: each tag kept, and why)
#   make test-deb   make deb, then t/deb.t: apt-get install of the .deb into
#                   the stock nginx, a device through it, and the package
#                   removed again (root only; see t/deb.t)
#
# The package holds the device-auth tool too (make cli-install, run by
# debian/rules; its manual page is debian/device-auth.1).

DEB_PACKAGES_BUILD := build-essential debhelper dpkg-dev nginx-dev \
                      libhiredis-dev libssl-dev libpcre2-dev zlib1g-dev \
                      libjansson-dev lintian git
DEB_BUILD       := $(BUILD)/deb
DEB_VERSION     := $(shell dpkg-parsechangelog -l debian/changelog \
                     -S Version 2>/dev/null)
DEB_ARCH        := $(shell dpkg --print-architecture 2>/dev/null)
DEB_FILE        := $(DEB_BUILD)/libnginx-mod-http-device-auth_$(DEB_VERSION)_$(DEB_ARCH).deb

.PHONY: deb deb-deps test-deb

deb-deps:
	@$(call apt_install,$(DEB_PACKAGES_BUILD))

# the files of the tree (tracked and new, not ignored: no build/), so
# that what is packaged is what would be committed
deb: deb-deps
	rm -rf $(DEB_BUILD)
	mkdir -p $(DEB_BUILD)/src
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
	    git ls-files -z --cached --others --exclude-standard \
	        | xargs -0 -I{} sh -c '[ ! -e "{}" ] || echo "{}"' \
	        | tar -cf - -T - | tar -C $(DEB_BUILD)/src -xf -; \
	else \
	    tar -cf - --exclude=./build --exclude=./.git . \
	        | tar -C $(DEB_BUILD)/src -xf -; \
	fi
	cd $(DEB_BUILD)/src && dpkg-buildpackage -us -uc -b \
	    > $(DEB_BUILD)/build.log 2>&1 \
	    || { tail -40 $(DEB_BUILD)/build.log; exit 1; }
	@echo "deb: $(DEB_FILE)"
	@dpkg-deb -I $(DEB_FILE) | sed -n 's/^ \(Version\|Depends\):/    \1:/p'
	@dpkg-deb -c $(DEB_FILE) | awk '{print "    " $$6 ($$7 ? " " $$7 " " $$8 : "")}'
	lintian --fail-on error,warning --info \
	    $(DEB_BUILD)/libnginx-mod-http-device-auth_$(DEB_VERSION)_$(DEB_ARCH).changes

test-deb: deb tools $(T_PKI)/.done
	DEVICE_AUTH_DEB=$(DEB_FILE) DEVICE_AUTH_PKI=$(T_PKI) prove t/deb.t


# ================================================================= bench
#   make bench           issues 4 and 10's side-by-side benchmark
#                        (bench/run.sh): stock nginx, the module (chain
#                        only; Redis with the device state cache, default
#                        settings; Redis untracked, a script call per
#                        request) and a Lua peer, keepalive and handshake
#                        modes, 1 and 2 workers, interleaved, then the
#                        extra measurements (revocation latency across 3
#                        edges, memory per cached device...); table, JSON
#                        and plot in bench/results/<date>-<time>/
#                        (bench/results/latest).  About 12 minutes on 2
#                        cores; BENCH_QUICK=1 about 1.
#                        Knobs: BENCH_* in bench/run.sh.
#   make bench-profile   perf and callgrind of the hot path (bench/profile.sh)
#   make bench-handshake what a device's TLS handshake costs, stock vs the
#                        module: callgrind (TLS 1.3, 1.2, resumed) and
#                        handshakes per worker CPU (bench/handshake.sh,
#                        issue 16).  About 12 minutes; knobs: HS_* there.
#   make bench-deps      what they need from apt (also needed by t/bench.t)

BENCH_PACKAGES   := nginx libnginx-mod-http-lua lua-nginx-redis redis-server \
                    redis-tools gnuplot-nox openssl libssl-dev perl procps \
                    build-essential
PROFILE_PACKAGES := linux-perf valgrind

.PHONY: bench bench-deps bench-tools bench-profile bench-handshake

bench-deps:
	@$(call apt_install,$(BENCH_PACKAGES) $(if $(filter bench-profile bench-handshake,$(MAKECMDGOALS)),$(PROFILE_PACKAGES)))

bench-tools: bench-deps
	$(MAKE) -s -C bench loadgen revprobe

bench: module bench-tools
	BENCH_COMMAND="$(if $(BENCH_QUICK),BENCH_QUICK=$(BENCH_QUICK) )make bench" \
	    bash bench/run.sh

bench-profile: module bench-tools
	bash bench/profile.sh

bench-handshake: module bench-tools
	bash bench/handshake.sh

# t/bench.t runs bench/run.sh in its quick mode
test: bench-tools
