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

test: all $(T_PKI)/.done
	DEVICE_AUTH_PKI=$(T_PKI) prove -r t/

demo: all
	@bash demo/demo.sh start

demo-stop:
	@bash demo/demo.sh stop

clean:
	rm -rf $(BUILD)
