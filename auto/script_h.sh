#!/bin/sh
# Embeds the Redis script (Lua) in the module as a C string:
#   sh auto/script_h.sh src/ngx_http_device_auth_script.lua OUT.h
# Run by the rule that config.make adds to nginx's objs/Makefile.

set -e

src=$1
out=$2

{
    echo "/* generated from ngx_http_device_auth_script.lua */"
    echo "static const char ngx_http_device_auth_script_src[] ="
    sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/    "/' -e 's/$/\\n"/' "$src"
    echo "    ;"
} > "$out.tmp"

mv "$out.tmp" "$out"
