#!/usr/bin/perl

# The order of "load_module" decides who runs first in a phase (issue 9,
# item 12): nginx runs a phase's handlers in the reverse order of their
# registration, and a module without an order of its own registers in the
# order it is loaded.  One loaded after device_auth that answers in the
# rewrite phase answers before device_auth decides: nginx -t warns, naming
# it.  Loaded before device_auth, it runs after the decision.  The module
# is a fixture of the tests (t/fixtures/order_module): it answers 204 in
# the rewrite phase.  (Debian's Lua module places itself among the filter
# modules, whatever its load_module line: it registers before device_auth.)

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Basename qw(dirname);
use Test::More;
use DeviceAuth::Test;

my $t = DeviceAuth::Test->new();

my $fixture = $ENV{DEVICE_AUTH_ORDER_MODULE}
              || dirname($t->module_path) . '/ngx_http_order_test_module.so';

plan skip_all => "no $fixture (make)" unless -f $fixture;

my $http = <<'EOF2';
events {
}

http {
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;

    device_auth_certificate %%PKI%%/roots.pem;

    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        server_name localhost;

        location / {
            device_auth on;
            order_test_return on;
        }
    }
}
EOF2

# loaded after device_auth: warned, and it answers first
$t->write_conf("load_module %%MODULE%%;\nload_module $fixture;\n$http");
my ($ok, $out) = $t->test_config();
ok($ok, 'loaded after device_auth: nginx -t passes');
like($out, qr/\[warn\] device_auth: a handler of "\Q$fixture\E" runs in the rewrite phase before device_auth: load that module before ngx_http_device_auth_module/,
     'loaded after device_auth: nginx -t names the module');

$t->run();
is($t->https_get()->{status}, 204,
   'loaded after device_auth: no certificate, and it answers 204');
$t->check_error_log();

# loaded before device_auth: no warning, device_auth decides first
$t->write_conf("load_module $fixture;\nload_module %%MODULE%%;\n$http");
($ok, $out) = $t->test_config();
ok($ok, 'loaded before device_auth: nginx -t passes');
unlike($out, qr/runs in the \S+ phase before device_auth/,
       'loaded before device_auth: no warning');

$t->run();
is($t->https_get()->{status}, 400,
   'loaded before device_auth: no certificate, 496 first');
is($t->https_get(device => 'dev1')->{status}, 204,
   'loaded before device_auth: a device, then the module answers');
$t->check_error_log();

done_testing();
