# nginx addon make script: auto/make sources it after writing the rules of
# objs/Makefile.  The Redis script (Lua) is embedded in the module as a C
# string, generated into $NGX_OBJS by nginx's own make, so that
# "./configure --add-dynamic-module=... && make modules" needs nothing else.

cat << END                                                  >> $NGX_MAKEFILE

$NGX_OBJS/ngx_http_device_auth_script.h:	\\
		$ngx_addon_dir/src/ngx_http_device_auth_script.lua \\
		$ngx_addon_dir/auto/script_h.sh
	sh $ngx_addon_dir/auto/script_h.sh \\
		$ngx_addon_dir/src/ngx_http_device_auth_script.lua \\
		$NGX_OBJS/ngx_http_device_auth_script.h

END
