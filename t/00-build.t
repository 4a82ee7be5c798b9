#!/usr/bin/perl

# The module is built, loads into the stock nginx, and the suite's tools
# (PKI, echo upstream, redis-server, curl, reload) work.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use DeviceAuth::Test qw(upstream_values upstream_headers);

my $t = DeviceAuth::Test->new();

ok(-f $t->module_path, 'module built: ' . $t->module_path);
ok(-x $t->nginx_binary, 'nginx binary: ' . $t->nginx_binary);
ok(-x $t->cli_binary, 'device-auth built: ' . $t->cli_binary);
ok(-e $t->pki_file('.done'), 'test PKI generated in ' . $t->pki);

for my $f (qw(root root2 signer1 signer2 signer3 rogue_signer inter1 inter2
              dev1 dev2 dev3 dev_noexpiry dev_tng dev_unpinned_signer
              dev_rogue dev_expired dev_future dev_rsa dev_p384 dev_sha384
              dev_badcn dev_inject dev_ca dev_deep dev_generic server))
{
    ok(-s $t->pki_file("$f.pem") && -s $t->pki_file("$f.key"),
       "PKI has $f.pem and $f.key");
}

for my $f (qw(roots.pem signers.pem roots_both.pem notpem.txt key-only.pem
              leaf-as-root.pem rogue-signer-bundle.pem dev1.chain.pem
              dev_deep.chain.pem))
{
    ok(-s $t->pki_file($f), "PKI has $f");
}

# the module loads into Debian's nginx and its directives are known

$t->write_conf(<<'EOF');
http {
    device_auth_certificate %%PKI%%/roots.pem;

    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        server_name localhost;

        ssl_certificate     %%PKI%%/server.pem;
        ssl_certificate_key %%PKI%%/server.key;

        location / {
            device_auth on;
            proxy_pass http://%%ECHO%%;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_1%%;

        location / {
            proxy_set_header X-Remote-Addr $remote_addr;
            proxy_pass http://%%ECHO%%;
        }
    }
}
EOF

my ($ok, $out) = $t->test_config();
ok($ok, 'nginx -t with the module') or diag($out);
like($out, qr/test is successful/, 'nginx -t says successful');
unlike($out, qr/not binary compatible|version \S+ instead of/,
       'module binary compatible');

$t->run();

ok(kill(0, $t->nginx_pid), 'nginx runs');

# the echo upstream, directly and through nginx

my $r = $t->http_get(port => $t->echo_port, path => '/direct',
                     headers => [['X-Test', 'one'], ['X-Test', 'two']]);
is($r->{status}, 200, 'echo: 200');
is($r->{headers}{'x-echo-request'}, 'GET /direct HTTP/1.1', 'echo: request');
is_deeply([upstream_values($r, 'x-test')], ['one', 'two'],
          'echo: every header, in order');

$r = $t->http_get(port => $t->port(1), path => '/via-nginx');
is($r->{status}, 200, 'through nginx: 200');
is_deeply([upstream_values($r, 'Host')], ['127.0.0.1:' . $t->echo_port],
          'through nginx: Host of the upstream');

$r = $t->https_get(device => 'dev1');
is($r->{status}, 200, 'device through nginx: 200');
is_deeply([upstream_values($r, 'X-Device-Serial')], [$t->serial('dev1')],
          'device through nginx: serial');

# source addresses (several "places" for the Redis clone tests)

for my $a ('127.0.0.5', '127.0.0.77') {
    $r = $t->http_get(port => $t->port(1), local_addr => $a);
    is_deeply([upstream_values($r, 'X-Remote-Addr')], [$a],
              "client from $a");
}

# keepalive in the client helper

$r = $t->http_get(port => $t->port(1), keepalive => 5);
is(scalar(grep { $_->{status} == 200 } @{ $r->{responses} }), 5,
   'client keepalive: 5 responses');

# reload

SKIP: {
    skip 'reload needs the master process (nginx runs alone under valgrind)',
         2 if $t->valgrind;

    ok($t->reload(), 'reload');
    $r = $t->https_get(device => 'dev1');
    is($r->{status}, 200, 'after reload: 200');
}

# redis-server, for the Redis tests

SKIP: {
    skip 'redis-server not installed', 4
        unless grep { -x "$_/redis-server" } split /:/, $ENV{PATH};

    my $port = $t->redis_start();
    ok($port, 'redis-server started');
    is($t->redis_cli('SET', 'device_auth:test', 'a b'), 'OK', 'redis SET');
    is($t->redis_cli('-s', $t->redis_socket, 'GET', 'device_auth:test'),
       'a b', 'redis GET on the unix socket');
    $t->redis_stop();
    ok(!$t->redis_pid, 'redis-server stopped');
}

# curl, for the HTTP/2 tests

my ($rc, $body, $err) = $t->curl('--version');
like($body, qr/HTTP2/, 'curl supports HTTP/2');

$t->check_error_log();

done_testing();
